"""Story: a candidate asks to be called back at 15:00 their time. Ten minutes before, the
coordinator gets one DM — "Callback due 16:00 your time (15:00 candidate time) · ALZ-0001 ·
attempt 2" — with Log call, Done, Snooze, Reschedule and Hand off. Snoozing brings it back 15
minutes later; Done stops it; if nothing happens by due + 30 min the study channel hears "1
callback overdue for @casey" once, without patient identity. A worker that was down catches up
with one late reminder per callback. Unanswered candidates get their next attempt planned until
the study's max attempts, then become unreachable. Do-not-call candidates are never reminded."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app.scheduler import run_job
from bot import blocks as bk
from bot import ids
from storage.models import AuditEvent, Callback, Candidate
from tests.conftest import Bot
from tests.test_log_prescreen_call import CASEY, PAT, PHI_STRINGS, SAM, new_candidate, submit

START = dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)  # Tue 09:00 New York, 08:00 Chicago
CHICAGO, NEW_YORK = ZoneInfo("America/Chicago"), ZoneInfo("America/New_York")
DUE = dt.datetime(2026, 11, 24, 15, 0, tzinfo=CHICAGO)  # = 16:00 in New York
CHANNEL = "C0ALZ0001"


@pytest.fixture
def clock(bot: Bot) -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def at(traveller: Any, when: dt.datetime) -> None:
    traveller.move_to(when, tick=False)


def log_callback(bot: Bot, user: str = CASEY, due: dt.datetime = DUE, **fields: Any) -> dict[str, Any]:
    local = due.astimezone(CHICAGO)
    values = new_candidate(**{ids.REGION_INPUT: "IL", ids.OUTCOME_SELECT: "callback_requested",
                              ids.CB_DATE_INPUT: local.date(), ids.CB_TIME_INPUT: f"{local:%H:%M}",
                              **fields})
    resp = submit(bot, user, bot.open_modal(user), values)
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text
    return values


def tick(bot: Bot) -> None:
    """What the worker does every 30 s: the callbacks job, then the outbox."""
    run_job(bot.ctx, "callbacks")
    bot.deliver()


def dms(bot: Bot, user: str = CASEY) -> list[dict[str, Any]]:
    return bot.standin.messages(bot.standin.dm_channel(user))


def reminders(bot: Bot, user: str = CASEY) -> list[dict[str, Any]]:
    return [m for m in dms(bot, user) if "due" in (m.get("text") or "") and "callback_actions" in str(
        m.get("blocks"))]


def click(bot: Bot, user: str, action_id: str, message: dict[str, Any]) -> Any:
    return bot.slack.click(user, action_id, message=message, channel_id=bot.standin.dm_channel(CASEY))


def callback(bot: Bot) -> Callback:
    with bot.db.session() as s:
        rows = s.scalars(select(Callback).order_by(Callback.id)).all()
        s.expunge_all()
    return rows[-1]


def test_reminder_fires_once_ten_minutes_before_with_both_times(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=11))
    tick(bot)
    assert reminders(bot) == []

    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    tick(bot)
    sent = reminders(bot)
    assert len(sent) == 1
    assert sent[0]["text"] == "Callback due 16:00 your time (15:00 candidate time) · ALZ-0001 · attempt 2"
    labels = [e["text"]["text"] for b in sent[0]["blocks"] if b["type"] == "actions" for e in b["elements"]]
    card = ["Open contact card"] if bot.ctx.settings.portal else []  # the number is on the card
    assert labels == ["Log call", "Done", "Snooze 15 min", "Reschedule", "Hand off", *card]
    assert "Late" not in str(sent[0]["blocks"])
    for phi in PHI_STRINGS:
        assert phi not in str(sent[0])

    at(clock, DUE - dt.timedelta(minutes=2))
    tick(bot)
    assert len(reminders(bot)) == 1


def test_snooze_reminds_again_after_fifteen_minutes(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    first = reminders(bot)[0]
    click(bot, CASEY, ids.CALLBACK_SNOOZE, first)
    replaced = bot.standin.wait_for(lambda s: next((m for m in dms(bot) if m["ts"] == first["ts"]
                                                    and "Snoozed" in m["text"]), None))
    assert "16:05" in replaced["text"] and "callback_actions" not in str(replaced.get("blocks"))
    click(bot, CASEY, ids.CALLBACK_SNOOZE, first)  # a double click changes nothing
    bot.standin.wait_for(lambda s: len(s.responses) >= 2)
    assert callback(bot).remind_at == DUE + dt.timedelta(minutes=5)
    with bot.db.session() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "callback.snoozed")).all()) == 1

    at(clock, DUE + dt.timedelta(minutes=4))
    tick(bot)
    assert len(reminders(bot)) == 0  # the first one was replaced by "Snoozed…"
    at(clock, DUE + dt.timedelta(minutes=5))
    tick(bot)
    again = reminders(bot)
    assert len(again) == 1 and again[0]["text"].startswith("Callback was due 16:00 your time")


def test_done_stops_the_reminder_and_the_escalation(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    click(bot, CASEY, ids.CALLBACK_DONE, reminders(bot)[0])
    bot.standin.wait_for(lambda s: any(m["text"].startswith(":white_check_mark: Done") for m in dms(bot)))
    at(clock, DUE + dt.timedelta(hours=2))
    tick(bot)
    assert reminders(bot) == []
    assert bot.standin.messages(CHANNEL) == []
    cb = callback(bot)
    assert cb.status == "done" and cb.completed_at == DUE - dt.timedelta(minutes=10)


def test_logging_the_call_closes_the_callback(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE)
    view = bot.open_modal(CASEY, text="log ALZ-0001")
    bot.slack.submit(CASEY, view["id"], {ids.OUTCOME_SELECT: "considering", "answer:age": "67",
                                         "answer:dx": "no", "answer:region": "NE"})
    with bot.db.session() as s:
        assert s.scalars(select(Callback.status)).all() == ["done"]
    at(clock, DUE + dt.timedelta(hours=1))
    tick(bot)
    assert reminders(bot) == [] and bot.standin.messages(CHANNEL) == []


def test_overdue_callback_escalates_to_the_channel_once(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    at(clock, DUE + dt.timedelta(minutes=29))
    tick(bot)
    assert bot.standin.messages(CHANNEL) == []
    at(clock, DUE + dt.timedelta(minutes=30))
    tick(bot)
    tick(bot)
    notes = bot.standin.messages(CHANNEL)
    assert [n["text"] for n in notes] == [
        f":rotating_light: 1 ALZ callback overdue for <@{CASEY}> (due Tue 16:00 EST). "
        "Log the call or reschedule it from the reminder DM."]
    assert "ALZ-0001" not in notes[0]["text"]
    cb = callback(bot)
    assert cb.status == "missed" and cb.escalated_at == DUE + dt.timedelta(minutes=30)


def test_worker_down_two_hours_sends_one_late_reminder_each(bot: Bot, clock: Any) -> None:
    for i, hhmm in enumerate(("11:00", "11:30", "12:15")):
        local = dt.datetime.combine(DUE.date(), dt.time.fromisoformat(hhmm), CHICAGO)
        log_callback(bot, due=local, **{ids.PHONE_INPUT: f"(617) 555-01{50 + i}"})
    at(clock, dt.datetime(2026, 11, 24, 14, 15, tzinfo=CHICAGO))  # the worker comes back
    tick(bot)
    tick(bot)
    sent = reminders(bot)
    assert sorted(m["text"].split(" · ")[1] for m in sent) == ["ALZ-0001", "ALZ-0002", "ALZ-0003"]
    assert all("Late reminder" in str(m["blocks"]) for m in sent)
    assert all(m["text"].startswith("Callback was due") for m in sent)
    with bot.db.session() as s:
        rows = s.scalars(select(Callback)).all()
        assert all(cb.reminded_late and cb.status == "missed" for cb in rows)
    assert len(bot.standin.messages(CHANNEL)) == 1  # one note: 3 callbacks overdue for @casey
    assert bot.standin.messages(CHANNEL)[0]["text"].startswith(":rotating_light: 3 ALZ callbacks")


def test_only_the_owner_or_a_study_coordinator_may_act(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    reminder = reminders(bot)[0]
    resp = click(bot, PAT, ids.CALLBACK_SNOOZE, reminder)
    assert resp.status_code == 200
    refusal = bot.standin.wait_for(lambda s: [r for r in s.responses if "can change" in str(r)])
    assert ("Only coordinators or admins of ALZ can change this callback; you are a stakeholder."
            in str(refusal[-1]))
    assert callback(bot).status == "scheduled"


def test_hand_off_moves_the_callback_and_its_reminder(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    click(bot, CASEY, ids.CALLBACK_HANDOFF, reminders(bot)[0])
    view = bot.standin.wait_for(lambda s: s.open_view(CASEY))
    assert view["callback_id"] == ids.HANDOFF_VIEW
    resp = bot.slack.submit(CASEY, view["id"], {ids.HANDOFF_SELECT: SAM})
    assert resp.status_code == 200 and "errors" not in resp.text, resp.text
    tick(bot)
    sam = dms(bot, SAM)
    assert any("handed you the callback to ALZ-0001" in m["text"] for m in sam)
    sam_reminder = reminders(bot, SAM)
    assert len(sam_reminder) == 1 and "15:00 your time (same for the candidate)" in sam_reminder[0]["text"]
    with bot.db.session() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "callback.handed_off")).all()


def test_reschedule_refuses_hours_outside_the_window_and_names_the_nearest(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    click(bot, CASEY, ids.CALLBACK_RESCHEDULE, reminders(bot)[0])
    view = bot.standin.wait_for(lambda s: s.open_view(CASEY))
    resp = bot.slack.submit(CASEY, view["id"], {ids.RS_DATE_INPUT: dt.date(2026, 11, 25),
                                                ids.RS_TIME_INPUT: "21:30"})
    error = resp.json()["errors"][ids.RS_TIME_BLOCK]
    assert "outside calling hours" in error and "Wed 20:45 or Thu 08:00" in error
    resp = bot.slack.submit(CASEY, view["id"], {ids.RS_DATE_INPUT: dt.date(2026, 11, 25),
                                                ids.RS_TIME_INPUT: "10:00"})
    assert resp.status_code == 200 and "errors" not in resp.text, resp.text
    cb = callback(bot)
    assert cb.due_at == dt.datetime(2026, 11, 25, 10, 0, tzinfo=CHICAGO)
    assert cb.status == "scheduled" and cb.reminded_at is None


def test_do_not_call_candidates_are_never_reminded(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    view = bot.open_modal(CASEY, text="log ALZ-0001")
    bot.slack.submit(CASEY, view["id"], {ids.OUTCOME_SELECT: "do_not_call"})
    # and a callback row that somehow stayed open for a do-not-call candidate
    log_callback(bot, **{ids.PHONE_INPUT: "(617) 555-0199"})
    with bot.db.session() as s:
        s.scalars(select(Candidate).where(Candidate.ref_code == "ALZ-0002")).one().do_not_call = True
    at(clock, DUE + dt.timedelta(hours=1))
    tick(bot)
    assert reminders(bot) == [] and bot.standin.messages(CHANNEL) == []
    with bot.db.session() as s:
        assert sorted(s.scalars(select(Callback.status)).all()) == ["cancelled", "cancelled"]


def test_unanswered_candidates_get_next_attempts_until_unreachable(bot: Bot, clock: Any) -> None:
    """ALZ allows 5 attempts over at least 3 days: each no-answer plans the next business day
    at another time of day; after the fifth the candidate is unreachable."""
    submit(bot, CASEY, bot.open_modal(CASEY),
           new_candidate(**{ids.REGION_INPUT: "IL", ids.OUTCOME_SELECT: "no_answer"}))
    planned: list[dt.datetime] = []
    for _ in range(4):
        cb = callback(bot)
        assert cb.kind == "cadence" and cb.status == "scheduled"
        planned.append(cb.due_at)
        at(clock, cb.due_at)
        tick(bot)
        assert reminders(bot)[-1]["text"].startswith("Next attempt")
        view = bot.open_modal(CASEY, text="log ALZ-0001")
        bot.slack.submit(CASEY, view["id"], {ids.OUTCOME_SELECT: "no_answer"})
        assert callback(bot).status in ("done", "scheduled")
    local = [p.astimezone(CHICAGO) for p in planned]
    assert all(p.weekday() < 5 for p in local)
    assert [p.hour for p in local] == [14, 18, 10, 14]  # first call at 08:00; slots rotate
    assert all(b.date() > a.date() for a, b in itertools.pairwise(local))
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate)).one()
        assert cand.status == "unreachable" and cand.attempts == 5 and cand.unreachable_at
        assert s.scalars(select(Callback).where(Callback.status.in_(("scheduled", "snoozed")))).all() == []
    bot.standin.wait_for(lambda _: "unreachable after 5 attempts" in bot.ephemeral_texts(CASEY)[-1],
                         message="the unreachable summary")
    run_job(bot.ctx, "cadence")  # the cadence job finds nothing more to plan
    assert callback(bot).status == "done"


def test_prescreen_callbacks_lists_mine_soonest_first(bot: Bot, clock: Any) -> None:
    log_callback(bot, due=DUE + dt.timedelta(days=1))
    log_callback(bot, **{ids.PHONE_INPUT: "(617) 555-0177"})
    body = bot.slack.slash_command(CASEY, text="callbacks").json()
    assert body["response_type"] == "ephemeral"
    text = str(body["blocks"])
    assert "Your callbacks* (2)" in text
    assert text.index("ALZ-0002") < text.index("ALZ-0001")
    assert "16:00 (15:00 candidate time)" in text
    other = bot.slack.slash_command(SAM, text="callbacks").json()
    assert "No open callbacks" in other["text"]


def test_reminder_buttons_carry_small_typed_values(bot: Bot, clock: Any) -> None:
    log_callback(bot)
    at(clock, DUE - dt.timedelta(minutes=10))
    tick(bot)
    buttons = [e for b in reminders(bot)[0]["blocks"] if b["type"] == "actions" for e in b["elements"]
               if "url" not in e]  # a link to the contact card carries the code in its URL only
    values = [bk.decode(e["value"]) for e in buttons]
    assert all(set(v) == {"cb", "ref"} and v["ref"] == "ALZ-0001" for v in values)


WORKER = """
import sys, time
from app.factory import create_context
from bot.callbacks.jobs import send_due_reminders
from bot.config import Settings

url, api, key, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
settings = Settings(_env_file=None, slack_bot_token="xoxb-worker", slack_signing_secret="s" * 32,
                    slack_api_url=api, database_url=url, prescreen_encryption_keys=key)
ctx = create_context(settings)
while time.time() < start:
    time.sleep(0.002)
total = 0
while True:
    sent, _late = send_due_reminders(ctx, batch=20)
    if not sent:
        break
    total += sent
print(total)
"""


def seed_due_reminders(bot: Bot, n: int) -> None:
    from storage.models import Member, Study

    now = bot.ctx.clock.now()
    cipher = bot.ctx.cipher
    with bot.db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "ALZ")).one()
        owners = [s.scalars(select(Member).where(Member.slack_user_id == u)).one().id for u in (CASEY, SAM)]
        cands = []
        for i in range(10):
            cand = Candidate(study_id=study.id, seq=i + 1, ref_code=f"ALZ-{i + 1:04d}",
                             name_enc=cipher.encrypt("x"), phone_enc=cipher.encrypt("+1"),
                             phone_index=f"p{i}", timezone="America/Chicago", status="callback")
            s.add(cand)
            cands.append(cand)
        s.flush()
        s.add_all(Callback(candidate_id=cands[i % 10].id, study_id=study.id, owner_id=owners[i % 2],
                           due_at=now + dt.timedelta(minutes=9), remind_at=now - dt.timedelta(minutes=1),
                           status="scheduled", kind="requested") for i in range(n))


def test_two_worker_processes_deliver_500_reminders_exactly_once(bot: Bot, tmp_path: Any) -> None:
    import subprocess
    import time

    from tests.conftest import ENCRYPTION_KEY, python_argv

    seed_due_reminders(bot, 500)
    url = bot.ctx.settings.database_url
    start = time.time() + 2.0
    argv = python_argv("-c", WORKER, url, bot.standin.url, ENCRYPTION_KEY, str(start))
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    claimed = [int(out.strip()) for out, _ in outputs]
    assert sum(claimed) == 500
    print(f"reminders claimed per worker: {claimed}")

    bot.deliver()
    sent = reminders(bot, CASEY) + reminders(bot, SAM)
    ids_sent = [bk.decode(b["elements"][0]["value"])["cb"] for m in sent for b in m["blocks"]
                if b["type"] == "actions"]
    assert len(ids_sent) == 500 and len(set(ids_sent)) == 500, f"per worker {claimed}"
    with bot.db.session() as s:
        assert all(s.scalars(select(Callback.reminded_at)).all())


def test_a_study_can_set_its_own_cadence(bot: Bot, clock: Any) -> None:
    from storage.models import Study

    with bot.db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "ALZ")).one()
        study.options = {**(study.options or {}), "cadence": {"times": ["09:30", "17:00"],
                                                             "gap_business_days": 2}}
    submit(bot, CASEY, bot.open_modal(CASEY),
           new_candidate(**{ids.REGION_INPUT: "IL", ids.OUTCOME_SELECT: "no_answer"}))
    due = callback(bot).due_at.astimezone(CHICAGO)
    # Tuesday 08:00 → nearest slot 09:30 → next 17:00, two business days on: Thursday
    assert (due.strftime("%a"), due.hour, due.minute) == ("Thu", 17, 0)
