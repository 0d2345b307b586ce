"""Story: Sam types `/prescreen next` and gets the one lead to call now: a callback that is due
comes first, then leads nobody has called yet (oldest intake first), then planned follow-up
attempts — and never someone whose calling window is closed (their own time zone and state
rules). `/prescreen queue` and the App Home "My queue" list everything Sam owns, most urgent
and oldest first, with the reason each item waits, which Sam can set with `/prescreen reason`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from sqlalchemy import select, update

from bot import blocks as bk
from bot import ids
from storage.models import AuditEvent, Callback, Candidate, Referral
from tests.conftest import Bot
from tests.leads_factory import make_lead, member_id
from tests.test_log_prescreen_call import CASEY, PAT, SAM

# Tue Nov 24 2026 16:00 UTC = 10:00 Chicago, 11:00 New York, 08:00 Los Angeles
NOW = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock(bot: Bot) -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def command(bot: Bot, user: str, text: str) -> dict[str, Any]:
    resp = bot.slack.slash_command(user, text=text, channel_id="C0MDD0001")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["response_type"] == "ephemeral"
    return body


def callback(bot: Bot, ref: str, due: dt.datetime, kind: str = "requested") -> None:
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate).where(Candidate.ref_code == ref)).one()
        s.add(Callback(candidate_id=cand.id, study_id=cand.study_id, owner_id=cand.owner_id,
                       due_at=due, remind_at=due - dt.timedelta(minutes=10), kind=kind,
                       status="scheduled"))


def close(bot: Bot, ref: str) -> None:
    """The lead was worked on: its callbacks are done and it is no longer waiting."""
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate).where(Candidate.ref_code == ref)).one()
        s.execute(update(Callback).where(Callback.candidate_id == cand.id).values(status="done"))
        cand.status = "disqualified"


def next_ref(bot: Bot, user: str = SAM, study: str = "MDD") -> str | None:
    body = command(bot, user, f"next {study}")
    if not body["text"].startswith("Next: "):
        return None
    return body["text"].split(" · ")[0].removeprefix("Next: ")


def test_next_orders_due_callback_then_oldest_untouched_then_follow_up(bot: Bot, clock: Any) -> None:
    newer = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=1), owner=SAM)
    older = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=3), owner=SAM)
    follow = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=5), owner=SAM, attempts=1,
                       last_outcome="no_answer", first_called_at=NOW - dt.timedelta(days=1))
    callback(bot, follow, NOW - dt.timedelta(minutes=10), kind="cadence")
    asked = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=2), owner=SAM, attempts=1,
                      status="callback", last_outcome="callback_requested")
    callback(bot, asked, NOW + dt.timedelta(minutes=3))  # due within 5 minutes counts as due
    later = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=9), owner=SAM, attempts=1,
                      status="callback", last_outcome="callback_requested")
    callback(bot, later, NOW + dt.timedelta(hours=3))  # not due yet: never "next"
    dnc = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=30), owner=SAM, do_not_call=True)
    someone_elses = make_lead(bot.ctx, "ALZ", NOW - dt.timedelta(days=30), owner=CASEY)

    body = command(bot, SAM, "next MDD")
    assert body["text"].startswith(f"Next: {asked} · callback due now")
    assert "Attempts: 1 of 4" in str(body["blocks"])
    button = next(b["accessory"] for b in body["blocks"] if b.get("accessory"))
    assert button["action_id"] == ids.HOME_LOG_CALL and bk.decode(button["value"]) == {"ref": asked}

    order = [asked]
    close(bot, asked)
    for _ in range(3):
        ref = next_ref(bot)
        assert ref is not None
        order.append(ref)
        close(bot, ref)
    assert order == [asked, older, newer, follow]
    assert dnc not in order and someone_elses not in order
    assert "Your queue is clear" in command(bot, SAM, "next")["text"]


def test_next_waits_for_the_candidates_calling_window(bot: Bot, clock: Any) -> None:
    clock.move_to(dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC), tick=False)  # 07:30 in LA
    west = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=4), owner=SAM,
                     tz="America/Los_Angeles", region="CA")
    body = command(bot, SAM, "next")
    assert body["text"].startswith("Nothing callable right now: 1 lead waits for their calling "
                                   "window to open")
    central = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=1), owner=SAM)  # 09:30 Chicago
    assert next_ref(bot) == central

    clock.move_to(dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC), tick=False)  # 08:00 in LA
    assert next_ref(bot) == west  # the older one, now callable


def test_state_rules_close_the_window_earlier_than_the_time_zone(bot: Bot, clock: Any) -> None:
    # Tue 20:30 in New York: federal hours run to 21:00, Florida's rules stop calls at 20:00
    clock.move_to(dt.datetime(2026, 11, 25, 1, 30, tzinfo=dt.UTC), tick=False)
    florida = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=3), owner=SAM,
                        tz="America/New_York", region="FL")
    boston = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=1), owner=SAM,
                       tz="America/New_York", region="MA")
    assert next_ref(bot) == boston
    close(bot, boston)
    assert next_ref(bot) is None
    clock.move_to(dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.UTC), tick=False)  # 09:00 Wed
    assert next_ref(bot) == florida


def test_log_call_button_on_next_opens_the_form_for_that_lead(bot: Bot, clock: Any) -> None:
    ref = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(hours=5), owner=SAM)
    body = command(bot, SAM, "next")
    before = len(bot.standin.view_stack(SAM))
    button = next(b["accessory"] for b in body["blocks"] if b.get("accessory"))
    shown = bot.standin.ephemerals(SAM)[-1]
    bot.slack.click(SAM, ids.HOME_LOG_CALL, button["value"], message=shown, channel_id="C0MDD0001")
    bot.standin.wait_for(lambda s: len(s.view_stack(SAM)) > before, message="log-call modal")
    assert ref in str(bot.standin.open_view(SAM)["blocks"])


def queue_setup(bot: Bot) -> dict[str, str]:
    refs = {
        "untouched_new": make_lead(bot.ctx, "MDD", NOW - dt.timedelta(hours=2), owner=SAM),
        "untouched_old": make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=2), owner=SAM),
        "follow": make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=6), owner=SAM, attempts=2,
                            last_outcome="left_voicemail"),
        "referred": make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=8), owner=SAM, attempts=1,
                              status="referred", last_outcome="pre_qualified"),
        "due": make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=1), owner=SAM, attempts=1,
                         status="callback", last_outcome="callback_requested"),
    }
    callback(bot, refs["follow"], NOW - dt.timedelta(hours=1), kind="cadence")
    callback(bot, refs["due"], NOW - dt.timedelta(minutes=20))
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate).where(Candidate.ref_code == refs["referred"])).one()
        s.add(Referral(candidate_id=cand.id, study_id=cand.study_id, state="pending_approval",
                       created_at=NOW - dt.timedelta(days=1), updated_at=NOW - dt.timedelta(days=1)))
    return refs


def test_queue_lists_by_urgency_and_age_with_reasons(bot: Bot, clock: Any) -> None:
    refs = queue_setup(bot)
    body = command(bot, SAM, "queue MDD")
    assert body["text"] == "Your queue in MDD: 5 items, most urgent first"
    lines = str(body["blocks"][1]["text"]["text"]).split("\n")
    assert [line.split("*")[1] for line in lines] == [
        refs["due"], refs["untouched_old"], refs["untouched_new"], refs["follow"], refs["referred"]]
    assert "callback due Tue 09:40 their time" in lines[0]
    assert "new lead · waiting 2 d · _not contacted yet_" in lines[1]
    assert "attempt 3 of 4 · _no response_" in lines[3]
    assert "pending approval · 24 h · _needs review_" in lines[4]


def test_queue_truncates_with_and_n_more(bot: Bot, clock: Any) -> None:
    for i in range(23):
        make_lead(bot.ctx, "MDD", NOW - dt.timedelta(hours=30 - i), owner=SAM)
    body = command(bot, SAM, "queue")
    assert body["text"] == "Your queue: 23 items, most urgent first"
    lines = [line for b in body["blocks"][1:] if b["type"] == "section"
             for line in b["text"]["text"].split("\n")]
    assert len(lines) == 20
    assert "and 3 more" in str(body["blocks"])
    assert "MDD-0001" in lines[0]  # the oldest is shown first


def test_app_home_shows_my_queue_in_the_same_order(bot: Bot, clock: Any) -> None:
    refs = queue_setup(bot)
    bot.slack.app_home_opened(SAM)
    home = bot.standin.wait_for(lambda s: s.home(SAM), message="home published")
    text = str(home["blocks"])
    assert "My queue" in text
    shown = [r for r in sorted(refs.values(), key=text.index)]
    assert shown == [refs["due"], refs["untouched_old"], refs["untouched_new"], refs["follow"],
                     refs["referred"]]


def test_reason_command_sets_the_reason_shown_in_the_queue(bot: Bot, clock: Any) -> None:
    ref = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(days=2), owner=SAM)
    body = command(bot, SAM, f"reason {ref} waiting_on_records")
    assert body["text"] == f"{ref} waits: waiting on records."
    assert "_waiting on records_" in str(command(bot, SAM, "queue")["blocks"])
    body = command(bot, SAM, f"reason {ref} busy")
    assert body["text"].startswith(":warning: `busy` is not a wait reason. Use one of "
                                   "`no_response`, `waiting_on_records`, `scheduling_conflict`, "
                                   "`needs_review`, `likely_not_a_fit`")
    assert command(bot, SAM, f"reason {ref} likely not a fit")["text"] == \
        f"{ref} waits: likely not a fit."
    assert command(bot, PAT, f"reason {ref} no_response")["text"] == \
        ":warning: You are not a member of MDD. Ask your admin to add you."
    assert command(bot, SAM, f"reason {ref} clear")["text"].startswith(f"{ref}: reason cleared")
    with bot.db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "lead.wait_reason")
                           .order_by(AuditEvent.id)).all()
        assert [e.after["wait_reason"] for e in events] == [
            "waiting_on_records", "likely_not_a_fit", None]
    assert member_id(bot.db, SAM)
