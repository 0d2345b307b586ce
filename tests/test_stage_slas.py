"""Story: nothing should sit untouched. Each study has stage SLAs (first call attempt within 24
business hours of intake, approval within 1 business day, site contact within 2 business days of
sent_to_site, visit scheduled within 10 days of site contact). When an item misses one, its
owner gets one DM saying what to do; when items are twice over, the study channel gets one note
with counts only. Business time is Mon–Fri in study hours and study time zone, DST included."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app.scheduler import run_job
from bot.leads import sla
from bot.leads.business_time import SlaConfig, add_business_days, add_workday_hours
from bot.studies.importer import validate
from storage.models import Candidate, Referral, ReferralEvent, Site, SlaNotice
from tests.conftest import Bot
from tests.leads_factory import LEAD_NAME, LEAD_PHONE, import_yaml, make_lead
from tests.test_log_prescreen_call import SAM

CHI = ZoneInfo("America/Chicago")
MDD_CHANNEL = "C0MDD0001"


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CHI)  # type: ignore[misc]


@pytest.fixture
def clock(bot: Bot) -> Any:
    with time_machine.travel(local(2026, 11, 23, 9, 0), tick=False) as traveller:
        yield traveller


def tick(bot: Bot) -> None:
    run_job(bot.ctx, "slas")
    bot.deliver()


def dms(bot: Bot, user: str = SAM) -> list[str]:
    return [m["text"] for m in bot.standin.messages(bot.standin.dm_channel(user))]


def channel(bot: Bot) -> list[str]:
    return [m["text"] for m in bot.standin.messages(MDD_CHANNEL)]


def referral(bot: Bot, ref: str, state: str, at: dt.datetime) -> None:
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate).where(Candidate.ref_code == ref)).one()
        site = s.scalars(select(Site).where(Site.study_id == cand.study_id)).first()
        r = Referral(candidate_id=cand.id, study_id=cand.study_id, site_id=site.id if site else None,
                     state=state, created_at=at - dt.timedelta(days=3))
        s.add(r)
        s.flush()
        s.add(ReferralEvent(referral_id=r.id, from_state=None, to_state=state, actor="test", at=at))
        cand.status, cand.first_called_at, cand.attempts = "referred", at, 1


MDD = SlaConfig("America/Chicago")


def test_first_attempt_deadline_runs_in_business_hours_across_the_weekend() -> None:
    monday_10 = local(2026, 11, 23, 10, 0)
    assert add_workday_hours(MDD, monday_10, 24) == local(2026, 11, 24, 10, 0)
    friday_16 = local(2026, 11, 27, 16, 0)  # 8 h Friday, the weekend paused, 16 h Monday
    assert add_workday_hours(MDD, friday_16, 24) == local(2026, 11, 30, 16, 0)
    saturday = local(2026, 11, 28, 11, 0)  # the clock starts Monday 09:00
    assert add_workday_hours(MDD, saturday, 24) == local(2026, 12, 1, 9, 0)
    monday_night = local(2026, 11, 23, 20, 0)  # after hours: starts Tuesday 09:00
    assert add_workday_hours(MDD, monday_night, 24) == local(2026, 11, 25, 9, 0)
    friday_20 = local(2026, 11, 27, 20, 0)  # starts Monday 09:00; 4 h + 4 h crosses no weekend
    assert add_workday_hours(MDD, friday_20, 8) == local(2026, 11, 30, 17, 0)
    thursday_16 = local(2026, 11, 26, 16, 0)
    assert add_workday_hours(MDD, thursday_16, 40) == local(2026, 11, 30, 8, 0)


def test_business_day_boundaries() -> None:
    assert add_business_days(MDD, local(2026, 11, 24, 16, 59), 1) == local(2026, 11, 25, 16, 59)
    assert add_business_days(MDD, local(2026, 11, 24, 17, 30), 1) == local(2026, 11, 26, 9, 0)
    assert add_business_days(MDD, local(2026, 11, 27, 16, 0), 1) == local(2026, 11, 30, 16, 0)
    assert add_business_days(MDD, local(2026, 11, 27, 16, 0), 2) == local(2026, 12, 1, 16, 0)
    assert add_business_days(MDD, local(2026, 11, 24, 7, 0), 1) == local(2026, 11, 25, 9, 0)


def test_dst_weeks_keep_local_business_hours() -> None:
    # fall back (Sun Nov 1 2026): Friday 10:00 CDT + 2 business days = Tuesday 10:00 CST
    due = add_business_days(MDD, local(2026, 10, 30, 10, 0), 2)
    assert due == dt.datetime(2026, 11, 3, 16, 0, tzinfo=dt.UTC)
    # spring forward (Sun Mar 14 2027): 24 h from Friday 16:00 CST, weekend paused
    due = add_workday_hours(MDD, local(2027, 3, 12, 16, 0), 24)
    assert due == dt.datetime(2027, 3, 15, 21, 0, tzinfo=dt.UTC)  # Mon 16:00 CDT
    # 10 calendar days across the change: same wall time, one 25-hour day
    cfg = SlaConfig("America/Chicago")
    contacted = local(2026, 10, 28, 12, 0)
    assert sla._deadlines(cfg, "visit_scheduled", contacted)[0] == local(2026, 11, 7, 12, 0)
    elapsed = local(2026, 11, 7, 12, 0).astimezone(dt.UTC) - contacted.astimezone(dt.UTC)
    assert elapsed == dt.timedelta(days=10, hours=1)


def test_owner_gets_one_dm_at_breach_even_if_the_job_runs_twice(bot: Bot, clock: Any) -> None:
    intake = local(2026, 11, 27, 16, 0)  # Friday 16:00: due Monday 16:00
    ref = make_lead(bot.ctx, "MDD", intake, owner=SAM)
    clock.move_to(local(2026, 11, 30, 15, 59), tick=False)
    tick(bot)
    assert dms(bot) == []
    clock.move_to(local(2026, 11, 30, 16, 5), tick=False)
    tick(bot)
    tick(bot)
    assert dms(bot) == [f":alarm_clock: SLA missed · {ref} · first contact was due Mon Nov 30 16:00 "
                        "your time (5 min late). Call them now: `/prescreen next MDD`."]
    assert channel(bot) == []  # not yet 2× over


def test_approval_breach_the_next_business_day(bot: Bot, clock: Any) -> None:
    ref = make_lead(bot.ctx, "MDD", local(2026, 11, 20, 9, 0), owner=SAM)
    referral(bot, ref, "pending_approval", local(2026, 11, 24, 16, 59))  # Tuesday
    clock.move_to(local(2026, 11, 25, 16, 58), tick=False)
    tick(bot)
    assert dms(bot) == []
    clock.move_to(local(2026, 11, 25, 16, 59), tick=False)
    tick(bot)
    assert dms(bot) == [f":alarm_clock: SLA missed · {ref} · approval was due Wed Nov 25 16:59 your "
                        "time (0 min late). Ask a MDD approver to decide on the card in <#C0MDD0001>."]


def test_site_contact_and_visit_stages(bot: Bot, clock: Any) -> None:
    sent = make_lead(bot.ctx, "MDD", local(2026, 11, 2, 9, 0), owner=SAM)
    referral(bot, sent, "sent_to_site", local(2026, 11, 20, 10, 0))  # Friday: due Tuesday 10:00
    contacted = make_lead(bot.ctx, "MDD", local(2026, 11, 2, 9, 0), owner=SAM)
    referral(bot, contacted, "site_contacted", local(2026, 11, 14, 10, 0))  # due Tue Nov 24 10:00
    clock.move_to(local(2026, 11, 24, 9, 59), tick=False)
    tick(bot)
    assert dms(bot) == []
    clock.move_to(local(2026, 11, 24, 10, 0), tick=False)
    tick(bot)
    text = "\n".join(dms(bot))
    assert f"{sent} · site contact was due Tue Nov 24 10:00" in text
    assert f"{contacted} · visit scheduling was due Tue Nov 24 10:00" in text


def test_channel_hears_counts_once_when_items_are_twice_over(bot: Bot, clock: Any) -> None:
    a = make_lead(bot.ctx, "MDD", local(2026, 11, 16, 9, 0), owner=SAM)  # due Tue 17th 09:00
    b = make_lead(bot.ctx, "MDD", local(2026, 11, 16, 10, 0))  # nobody owns it yet
    c = make_lead(bot.ctx, "MDD", local(2026, 11, 2, 9, 0), owner=SAM)
    referral(bot, c, "sent_to_site", local(2026, 11, 16, 10, 0))  # 2×: Fri Nov 20 10:00
    fresh = make_lead(bot.ctx, "MDD", local(2026, 11, 23, 9, 0), owner=SAM)  # due Tue 24th 09:00
    clock.move_to(local(2026, 11, 24, 12, 0), tick=False)
    tick(bot)
    tick(bot)
    notes = channel(bot)
    assert notes == [":warning: 3 MDD items are 2× past SLA: 2 first contact, 1 site contact. "
                     "Run `/prescreen queue MDD`."]
    for secret in (LEAD_NAME, "Quimbleworth", LEAD_PHONE, "555-0199", a, b, c, fresh):
        assert secret not in notes[0]
    for text in dms(bot):  # the owner's DMs carry reference codes only
        assert LEAD_NAME not in text and LEAD_PHONE not in text
    assert len(dms(bot)) == 3  # a, c and fresh; b has no owner
    with bot.db.session() as s:
        levels = sorted(n.level for n in s.scalars(select(SlaNotice)))
    assert levels == ["2x", "2x", "2x", "breach", "breach", "breach", "breach"]
    # later, fresh crosses 2× too: a new note counts only that one
    clock.move_to(local(2026, 11, 25, 9, 0), tick=False)
    tick(bot)
    assert channel(bot)[1:] == [":warning: 1 MDD item is 2× past SLA: 1 first contact. "
                                "Run `/prescreen queue MDD`."]


def test_two_workers_send_each_breach_dm_once(bot: Bot, clock: Any) -> None:
    import threading

    refs = [make_lead(bot.ctx, "MDD", local(2026, 11, 16, 9, i), owner=SAM) for i in range(20)]
    clock.move_to(local(2026, 11, 19, 12, 0), tick=False)  # all late, none 2× over
    workers = [threading.Thread(target=sla.check_all, args=(bot.ctx,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    bot.deliver()
    sent = dms(bot)
    assert len(sent) == 20 and sorted(t.split(" · ")[1] for t in sent) == sorted(refs)


def test_stale_summary_breaks_down_by_source_site_owner_and_reason(bot: Bot, clock: Any) -> None:
    make_lead(bot.ctx, "MDD", local(2026, 11, 16, 9, 0), owner=SAM, source="web form")
    make_lead(bot.ctx, "MDD", local(2026, 11, 16, 9, 0), source="referral partner")
    sent = make_lead(bot.ctx, "MDD", local(2026, 11, 2, 9, 0), owner=SAM, source="web form",
                     wait_reason="waiting_on_records")
    referral(bot, sent, "sent_to_site", local(2026, 11, 16, 10, 0))
    make_lead(bot.ctx, "MDD", local(2026, 11, 23, 13, 0), owner=SAM)  # due Tue 13:00: not late
    out = sla.stale_summary(bot.ctx, "MDD", local(2026, 11, 24, 12, 0))
    assert out == {
        "study": "MDD", "total": 3,
        "by_stage": {"first_attempt": 2, "site_contact": 1},
        "by_source": {"web form": 2, "referral partner": 1},
        "by_site": {"none": 2, "CHI": 1},
        "by_owner": {SAM: 2, "unassigned": 1},
        "by_reason": {"not contacted yet": 2, "waiting on records": 1},
    }


def test_study_slas_are_configurable_and_validated(bot: Bot, clock: Any, tmp_path: Path) -> None:
    import_yaml(bot.db, tmp_path, """
        studies:
          - key: QKS
            title: Quick study
            channel: C0MDD0001
            timezone: America/Chicago
            slas: {first_attempt_hours: 8, business_hours: "08:00-18:00"}
        members:
          - slack_id: U0COORD02
            timezone: America/Chicago
            roles: {ALZ: coordinator, MDD: coordinator, QKS: coordinator}
        """)
    ref = make_lead(bot.ctx, "QKS", local(2026, 11, 27, 16, 0), owner=SAM)  # Friday 16:00
    clock.move_to(local(2026, 11, 29, 23, 59), tick=False)  # 8 h Friday, the weekend paused
    tick(bot)
    assert not any(ref in t for t in dms(bot))
    clock.move_to(local(2026, 11, 30, 0, 5), tick=False)
    tick(bot)
    assert any(f"{ref} · first contact was due Mon Nov 30 00:00" in t for t in dms(bot))

    bad = {"studies": [{"key": "BAD", "title": "x", "channel": "C0X1", "timezone": "UTC",
                        "slas": {"first_attempt_hours": 0, "business_hours": "17:00-09:00",
                                 "visit_days": 3}}]}
    assert validate(bad, set()) == [
        "study BAD: slas.visit_days: unknown setting; use first_attempt_hours, "
        "approval_business_days, site_contact_business_days, visit_scheduled_days, business_hours",
        "study BAD: slas.first_attempt_hours: must be a whole number of hours from 1 to 240",
        "study BAD: slas.business_hours: the start must be before the end",
    ]
