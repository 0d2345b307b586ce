"""Story: at 08:00 in her own time zone Casey gets one "your day" DM: today's callbacks in the
order she has to make them (her time, and the candidate's when it differs), the candidates
waiting for another attempt, and her Outlook meetings when the calendar is connected —
reference codes only. A coordinator with nothing to do gets no DM; a worker that was down
sends it late, once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from app.scheduler import run_job
from bot import ids
from storage.models import Candidate, DigestRun
from tests.conftest import Bot
from tests.test_callback_reminders import log_callback
from tests.test_log_prescreen_call import CASEY, PHI_STRINGS, SAM, new_candidate, submit

START = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # Mon 10:00 New York
TUE_8_NY = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)
CHICAGO_DUE = dt.datetime(2026, 11, 24, 21, 0, tzinfo=dt.UTC)  # 15:00 Chicago, 16:00 New York
EARLY_DUE = dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)  # 10:30 New York (candidate in NY)


@pytest.fixture
def clock(bot: Bot) -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def your_day_dms(bot: Bot, user: str = CASEY) -> list[dict[str, Any]]:
    return [m for m in bot.standin.messages(bot.standin.dm_channel(user))
            if (m.get("text") or "").startswith("Your day")]


def tick(bot: Bot) -> None:
    run_job(bot.ctx, "digests")
    bot.deliver()


def test_casey_gets_her_day_at_eight_her_time_once(bot: Bot, clock: Any) -> None:
    log_callback(bot, due=CHICAGO_DUE)  # ALZ-0001, candidate in Chicago
    values = new_candidate(**{ids.OUTCOME_SELECT: "callback_requested",
                              ids.CB_DATE_INPUT: dt.date(2026, 11, 24),
                              ids.CB_TIME_INPUT: "10:30", ids.PHONE_INPUT: "(617) 555-0199"})
    resp = submit(bot, CASEY, bot.open_modal(CASEY), values)  # ALZ-0002, in New York
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text
    resp = submit(bot, CASEY, bot.open_modal(CASEY), new_candidate(**{
        ids.OUTCOME_SELECT: "considering", ids.PHONE_INPUT: "(617) 555-0177"}))  # ALZ-0003
    assert resp.status_code == 200 and "response_action" not in resp.text, resp.text
    bot.deliver()

    clock.move_to(TUE_8_NY - dt.timedelta(minutes=1), tick=False)
    tick(bot)
    assert your_day_dms(bot) == []

    clock.move_to(TUE_8_NY, tick=False)
    tick(bot)
    tick(bot)
    [dm] = your_day_dms(bot)
    body = str(dm["blocks"])
    assert "Your day — Tue 24 Nov" in body
    first, second = body.index("10:30 · ALZ-0002"), body.index("16:00 (15:00 CST for them) · ALZ-0001")
    assert first < second  # in the order she makes them
    assert "ALZ-0003 · 1 attempt · last considering" in body
    assert "sent late" not in body
    for phi in PHI_STRINGS:
        assert phi not in str(dm)
    with bot.db.session() as s:
        runs = s.scalars(select(DigestRun).where(DigestRun.scope == f"yourday:{CASEY}",
                                                 DigestRun.period == "2026-11-24")).all()
        assert [(r.status, r.late) for r in runs] == [("sent", False)]

    # Sam (Chicago) has nothing today: no DM at his 08:00 either
    clock.move_to(TUE_8_NY + dt.timedelta(hours=1), tick=False)
    tick(bot)
    assert your_day_dms(bot, SAM) == []
    assert len(your_day_dms(bot)) == 1


def test_a_worker_down_at_eight_sends_it_late_once_and_not_after_twelve_hours(
        bot: Bot, clock: Any) -> None:
    log_callback(bot, due=CHICAGO_DUE)
    clock.move_to(TUE_8_NY + dt.timedelta(hours=2), tick=False)
    tick(bot)
    tick(bot)
    [dm] = your_day_dms(bot)
    assert "sent late — it was due 08:00 EST" in str(dm["blocks"])

    # Wednesday: down from 07:00 to 21:00 New York — the 08:00 DM is skipped, not sent at night
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate)).one()
        cand.status = "needs_call"
    clock.move_to(TUE_8_NY + dt.timedelta(days=1, hours=13), tick=False)
    tick(bot)
    assert len(your_day_dms(bot)) == 1
    with bot.db.session() as s:
        runs = s.scalars(select(DigestRun).where(DigestRun.scope == f"yourday:{CASEY}",
                                                 DigestRun.period > "2026-11-23")
                         .order_by(DigestRun.period)).all()
        assert [(r.period, r.status) for r in runs] == [("2026-11-24", "sent"),
                                                        ("2026-11-25", "skipped")]


def test_the_day_is_the_local_day_on_dst_changes(bot: Bot) -> None:
    """1 Nov 2026 in New York lasts 25 hours (04:00 UTC to 05:00 UTC next day); 8 Mar 23 hours."""
    from storage.models import Callback, Member

    with bot.db.session() as s:
        casey = s.scalars(select(Member).where(Member.slack_user_id == CASEY)).one()
        study_id = casey.memberships[0].study_id
        from storage.repositories import candidates as cand_repo

        def cb(ref_no: int, due: dt.datetime) -> None:
            cand = cand_repo.create(s, study_id, "ALZ", {
                "name_enc": "x", "phone_enc": "x", "phone_index": f"p{ref_no}",
                "timezone": "America/New_York", "status": "callback", "owner_id": casey.id})
            s.add(Callback(candidate_id=cand.id, study_id=study_id, owner_id=casey.id, due_at=due,
                           remind_at=due, status="scheduled"))
            s.flush()

        cb(1, dt.datetime(2026, 11, 1, 4, 30, tzinfo=dt.UTC))  # 00:30 EDT 1 Nov: in
        cb(2, dt.datetime(2026, 11, 2, 4, 30, tzinfo=dt.UTC))  # 23:30 EST 1 Nov: in
        cb(3, dt.datetime(2026, 11, 2, 5, 30, tzinfo=dt.UTC))  # 00:30 EST 2 Nov: out
        cb(4, dt.datetime(2026, 3, 8, 4, 30, tzinfo=dt.UTC))  # 23:30 EST 7 Mar: out
        cb(5, dt.datetime(2026, 3, 8, 5, 30, tzinfo=dt.UTC))  # 00:30 EST 8 Mar: in
        cb(6, dt.datetime(2026, 3, 9, 3, 30, tzinfo=dt.UTC))  # 23:30 EDT 8 Mar: in
        cb(7, dt.datetime(2026, 3, 9, 4, 30, tzinfo=dt.UTC))  # 00:30 EDT 9 Mar: out

    from bot.digests import your_day

    def refs(day: dt.date) -> list[str]:
        [msg] = your_day.build(bot.ctx, CASEY, day, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        text = str(msg.blocks)
        return [f"ALZ-{i:04d}" for i in range(1, 8) if f"· ALZ-{i:04d} ·" in text]

    assert refs(dt.date(2026, 11, 1)) == ["ALZ-0001", "ALZ-0002"]
    assert refs(dt.date(2026, 3, 8)) == ["ALZ-0005", "ALZ-0006"]


def test_with_outlook_connected_the_dm_lists_todays_meetings(bot: Bot) -> None:
    from integrations.graph.auth import StaticTokenCredential
    from integrations.graph.client import GraphClient
    from sandbox.graph_standin import SANDBOX_TOKEN, GraphStandin, seed_demo
    from storage.repositories import studies as study_repo

    eight = TUE_8_NY
    with time_machine.travel(eight - dt.timedelta(minutes=5), tick=False) as clock:
        with bot.db.session() as s:
            study_repo.upsert_member(s, slack_user_id=CASEY, email="casey@example.org",
                                     timezone="America/New_York", display_name=None,
                                     mailbox="casey@example.org", roles={"ALZ": "coordinator"},
                                     actor="t")
        graph = GraphStandin(static_tokens=[SANDBOX_TOKEN]).start()
        try:
            seed_demo(graph, {"casey@example.org": "America/New_York"}, eight)
            bot.ctx.graph = GraphClient(StaticTokenCredential(SANDBOX_TOKEN),
                                        base_url=graph.graph_url)
            run_job(bot.ctx, "graph_sync")
            clock.move_to(eight, tick=False)
            tick(bot)
        finally:
            bot.ctx.graph = None
            graph.stop()
    [dm] = your_day_dms(bot)
    body = str(dm["blocks"])
    assert "Meetings today" in body and "Sponsor check-in" in body
    assert "Protocol training" not in body  # cancelled
    assert "*Callbacks today (0):* none" in body
