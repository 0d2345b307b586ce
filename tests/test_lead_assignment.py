"""Story: new leads arrive without an owner. Every minute the assignment job shares them out
among the study's coordinators — in strict turn (round robin) or to whoever has the fewest open
items (least loaded, the default) — skipping people who are out of office when the calendar is
connected, and DMs each coordinator "3 new leads assigned to you · MDD-0101, …". A coordinator
can also hand a lead to someone with `/prescreen assign MDD-0042 @sam`."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from app.scheduler import run_job
from bot.leads.assignment import assign_pending
from storage.models import AuditEvent, CalendarEvent, Candidate, Member
from tests.conftest import Bot
from tests.leads_factory import bulk_leads, import_yaml, make_lead, member_id
from tests.test_log_prescreen_call import CASEY, LEE, PAT, SAM

ALEX = "U0ADMIN01"
# Tue Nov 24 2026 16:00 UTC = 11:00 New York, 10:00 Chicago: everyone is at work
NOW = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
TRIO = """
studies:
  - key: TRI
    title: Three coordinators
    channel: C0MDD0001
    timezone: America/Chicago
    assignment: {strategy}
members:
  - slack_id: U0COORD01
    timezone: America/New_York
    roles: {{ALZ: coordinator, TRI: coordinator}}
  - slack_id: U0COORD02
    timezone: America/Chicago
    roles: {{ALZ: coordinator, MDD: coordinator, TRI: coordinator}}
  - slack_id: U0ADMIN01
    timezone: America/New_York
    mailbox: alex@example.org
    roles: {{TRI: coordinator}}
"""


@pytest.fixture
def clock(bot: Bot) -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def trio(bot: Bot, tmp_path: Path, strategy: str) -> None:
    import_yaml(bot.db, tmp_path, TRIO.format(strategy=strategy))


def owners(bot: Bot, study_key: str = "TRI", *, open_only: bool = True) -> Counter[str]:
    with bot.db.session() as s:
        stmt = (select(Member.slack_user_id).join(Candidate, Candidate.owner_id == Member.id)
                .where(Candidate.ref_code.like(f"{study_key}-%")))
        return Counter(s.scalars(stmt))


def unowned(bot: Bot) -> int:
    with bot.db.session() as s:
        return len(s.scalars(select(Candidate.id).where(Candidate.owner_id.is_(None))).all())


def test_round_robin_shares_1000_leads_within_one_of_each_other(bot: Bot, clock: Any,
                                                                  tmp_path: Path) -> None:
    trio(bot, tmp_path, "round_robin")
    for batch in range(10):  # leads keep arriving between job runs
        bulk_leads(bot.ctx, "TRI", 100, NOW - dt.timedelta(hours=1, minutes=batch))
        run_job(bot.ctx, "assignment")
    counts = owners(bot)
    assert sum(counts.values()) == 1000 and unowned(bot) == 0
    assert set(counts) == {CASEY, SAM, ALEX}
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_least_loaded_evens_out_existing_load(bot: Bot, clock: Any, tmp_path: Path) -> None:
    trio(bot, tmp_path, "least_loaded")
    bulk_leads(bot.ctx, "TRI", 60, NOW - dt.timedelta(days=2), owner_id=member_id(bot.db, CASEY),
               attempts=1)
    bulk_leads(bot.ctx, "TRI", 15, NOW - dt.timedelta(days=2), owner_id=member_id(bot.db, ALEX),
               attempts=1)
    bulk_leads(bot.ctx, "TRI", 1000, NOW - dt.timedelta(hours=3))
    run_job(bot.ctx, "assignment")
    counts = owners(bot)
    assert sum(counts.values()) == 1075
    assert max(counts.values()) - min(counts.values()) <= 1, counts  # 358/358/359
    # the newcomer with no load got the first ones
    with bot.db.session() as s:
        first = s.scalars(select(Candidate).where(Candidate.attempts == 0)
                          .order_by(Candidate.created_at).limit(1)).one()
        assert first.owner_id == member_id(bot.db, SAM)


def test_least_loaded_ties_go_round_robin(bot: Bot, clock: Any, tmp_path: Path) -> None:
    trio(bot, tmp_path, "least_loaded")
    for _ in range(7):
        bulk_leads(bot.ctx, "TRI", 1, NOW - dt.timedelta(minutes=5))
        run_job(bot.ctx, "assignment")
    counts = owners(bot)
    assert sorted(counts.values()) == [2, 2, 3]


def test_out_of_office_coordinator_is_skipped_and_others_get_a_dm(bot: Bot, clock: Any,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    trio(bot, tmp_path, "round_robin")
    monkeypatch.setattr(bot.ctx, "graph", object())  # calendar connected
    with bot.db.session() as s:
        s.add(CalendarEvent(mailbox="alex@example.org", event_id="ooo-1", subject="Vacation",
                            start_at=NOW - dt.timedelta(days=1), end_at=NOW + dt.timedelta(days=3),
                            show_as="oof"))
    refs = [make_lead(bot.ctx, "TRI", NOW - dt.timedelta(minutes=30 - i)) for i in range(3)]
    summary = run_job(bot.ctx, "assignment")
    assert summary == "3 leads assigned to 2 coordinators"
    counts = owners(bot)
    assert ALEX not in counts and sum(counts.values()) == 3
    bot.deliver()
    dms = [m["text"] for u in (CASEY, SAM) for m in bot.standin.messages(bot.standin.dm_channel(u))]
    assert sorted(t.split(" · ")[0] for t in dms) == ["1 new TRI lead assigned to you",
                                                      "2 new TRI leads assigned to you"], dms
    assert sorted(r for t in dms for r in refs if r in t) == sorted(refs)
    with bot.db.session() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "lead.assigned")).all()) == 3


def test_nobody_available_falls_back_to_everyone_and_says_so(bot: Bot, clock: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    trio(bot, tmp_path, "least_loaded")
    monkeypatch.setattr(bot.ctx, "graph", object())
    clock.move_to(dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC), tick=False)  # Saturday
    make_lead(bot.ctx, "TRI", dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.UTC))
    summary = assign_pending(bot.ctx).summary()
    assert "nobody available in TRI" in summary
    assert sum(owners(bot).values()) == 1


def test_two_workers_assign_each_lead_once(bot: Bot, clock: Any, tmp_path: Path) -> None:
    trio(bot, tmp_path, "round_robin")
    bulk_leads(bot.ctx, "TRI", 300, NOW - dt.timedelta(hours=1))
    import threading

    results: list[Any] = []
    workers = [threading.Thread(target=lambda: results.append(assign_pending(bot.ctx)))
               for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sum(r.total for r in results) == 300
    assert unowned(bot) == 0
    with bot.db.session() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "lead.assigned")).all()) == 300


# ----- /prescreen assign -----

def command(bot: Bot, user: str, text: str) -> dict[str, Any]:
    resp = bot.slack.slash_command(user, text=text, channel_id="C0ALZ0001")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["response_type"] == "ephemeral"
    return body


def test_assign_with_a_mention_moves_the_lead_and_tells_the_new_owner(bot: Bot, clock: Any) -> None:
    ref = make_lead(bot.ctx, "ALZ", NOW - dt.timedelta(hours=2), owner=SAM)
    body = command(bot, SAM, f"assign {ref} <@{CASEY}|casey>")
    assert body["text"] == f":bust_in_silhouette: {ref} is now <@{CASEY}>'s (was <@{SAM}>)."
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate).where(Candidate.ref_code == ref)).one()
        assert cand.owner_id == member_id(bot.db, CASEY)
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "lead.assigned")).one()
        assert event.actor == SAM and event.after["owner"] == CASEY and event.before["owner"] == SAM
    bot.deliver()
    dm = bot.standin.messages(bot.standin.dm_channel(CASEY))
    assert [m["text"] for m in dm] == [f"<@{SAM}> assigned {ref} (ALZ) to you. Type `/prescreen "
                                       "next` when you're ready to call."]


def test_approver_may_assign_and_plain_handles_get_a_hint(bot: Bot, clock: Any) -> None:
    ref = make_lead(bot.ctx, "ALZ", NOW - dt.timedelta(hours=2))
    body = command(bot, LEE, f"assign {ref} @casey")
    assert "Mention them: type @ and pick the person" in body["text"]
    body = command(bot, LEE, f"assign {ref} <@{CASEY}>")
    assert body["text"].startswith(f":bust_in_silhouette: {ref} is now <@{CASEY}>'s")


def test_assign_refuses_non_coordinator_targets_and_outsiders(bot: Bot, clock: Any) -> None:
    ref = make_lead(bot.ctx, "MDD", NOW - dt.timedelta(hours=2))
    body = command(bot, SAM, f"assign {ref} <@{CASEY}|casey>")  # casey is ALZ only
    assert body["text"] == f":warning: <@{CASEY}> is not a MDD coordinator. Pick a coordinator of MDD."
    body = command(bot, PAT, f"assign {ref} <@{SAM}|sam>")  # pat is not in MDD at all
    assert body["text"] == ":warning: You are not a member of MDD. Ask your admin to add you."
    alz = make_lead(bot.ctx, "ALZ", NOW - dt.timedelta(hours=2))
    body = command(bot, PAT, f"assign {alz} <@{SAM}|sam>")  # a stakeholder may not assign
    assert body["text"] == (":warning: Only coordinators, approvers or admins of ALZ can assign "
                            "leads; you are a stakeholder.")
    body = command(bot, SAM, f"assign {alz} <@{LEE}|lee>")  # lee approves, does not call
    assert "is not a ALZ coordinator" in body["text"]
    assert owners(bot, "MDD") == Counter() and owners(bot, "ALZ") == Counter()
