"""Story: a sponsor asks for a year of figures and gets them at once, from the daily KPI rollups,
and they are the very numbers the raw rows give — whatever happened on the way: calls logged
late (a phone-system sync), calls corrected, a lead's source fixed, referrals moving on, a visit
date changed, callbacks closed in bulk, days that are 23 or 25 hours long, a worker that had not
run the `kpis` job yet, or ran it half-way.

Hypothesis builds random histories through the real write paths (ORM rows and the repositories'
bulk statements) and compares every figure of `study_kpis` from the rollups with the raw GROUP BY
definitions (`use_rollups=False`), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from sqlalchemy import func, select

from app import cli
from bot import kpi_jobs, kpis
from bot.config import Settings
from bot.context import AppContext
from bot.prescreen.outcomes import OUTCOMES
from bot.referrals.states import TRANSITIONS
from storage.crypto import PHICipher
from storage.db import Database
from storage.models import (
    Callback,
    Candidate,
    KpiCount,
    KpiMark,
    KpiSlotCount,
    KpiSlotDay,
    Member,
    PrescreenCall,
    Referral,
    Site,
    Study,
)
from storage.repositories import callbacks as callbacks_repo
from storage.repositories import candidates as candidates_repo
from storage.repositories import referrals as referrals_repo
from tests.conftest import ENCRYPTION_KEY

CIPHER = PHICipher([ENCRYPTION_KEY])
TOKEN = CIPHER.encrypt("Patient Name")
# Europe ends summer time on Oct 25 2026, the US on Nov 1: both inside the window
FIRST = dt.datetime(2026, 10, 22, tzinfo=dt.UTC)
DAYS = 14
NOW = FIRST + dt.timedelta(days=DAYS + 2)
ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"]
SOURCES = ["web-ads", "radio", None]
QIDS = ["age", "dx", "region", "meds"]
COORDS = ["U0COORD01", "U0COORD02"]
_seq = itertools.count(1)


class Clock:
    def __init__(self, at: dt.datetime = NOW) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


def make_ctx(db: Database, now: dt.datetime = NOW) -> AppContext:
    s = Settings(_env_file=None, callback_escalate_minutes=30)  # type: ignore[call-arg]
    return AppContext(settings=s, db=db, cipher=CIPHER, slack=WebClient(token="xoxb-unused"),
                      clock=Clock(now))


instant = st.builds(lambda sec: FIRST + dt.timedelta(seconds=sec),
                    st.integers(0, DAYS * 86400 - 1))
op = st.one_of(
    st.tuples(st.just("lead"), st.sampled_from(SOURCES), instant),
    st.tuples(st.just("leads_bulk"), st.sampled_from(SOURCES), st.integers(1, 3)),
    st.tuples(st.just("call"), st.integers(0, 50), instant, st.sampled_from(sorted(OUTCOMES)),
              st.integers(0, 1), st.lists(st.sampled_from(QIDS), max_size=3, unique=True)),
    st.tuples(st.just("correct_call"), st.integers(0, 50), instant,
              st.sampled_from(sorted(OUTCOMES))),
    st.tuples(st.just("fix_source"), st.integers(0, 50), st.sampled_from(SOURCES)),
    st.tuples(st.just("refer"), st.integers(0, 50), st.integers(0, 2), instant),
    st.tuples(st.just("advance"), st.integers(0, 50), st.integers(1, 90), st.integers(0, 3)),
    st.tuples(st.just("visit_date"), st.integers(0, 50), st.integers(0, 30)),
    st.tuples(st.just("callback"), st.integers(0, 50), instant,
              st.sampled_from(["scheduled", "done", "missed", "cancelled"]),
              st.integers(-40, 120)),
    st.tuples(st.just("close_callbacks"), st.integers(0, 50), st.sampled_from(["done", "cancelled"])),
    st.tuples(st.just("move_callback"), st.integers(0, 50), st.integers(-3000, 3000)),
    st.tuples(st.just("overdue"), instant),
    st.tuples(st.just("job"),),
)


def new_study(db: Database, tz: str) -> str:
    key = f"P{next(_seq):04d}"
    with db.session() as s:
        study = Study(key=key, title="Property study", channel_id="C0PROP001", timezone=tz,
                      options={"lead_sources": {"web-ads": {"cost_per_lead": 35.0}}})
        study.sites = [Site(key="S1", name="One", timezone=tz), Site(key="S2", name="Two",
                                                                   timezone=tz)]
        s.add(study)
    return key


def apply(db: Database, ctx: AppContext, key: str, ops: list[tuple[Any, ...]]) -> None:
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == key)).one()
        sid, site_ids = study.id, [x.id for x in study.sites]
        coords = [m.id for m in s.scalars(select(Member).where(Member.slack_user_id.in_(COORDS))
                                          .order_by(Member.slack_user_id))]
    seq = itertools.count(1)

    def pick(s: Any, model: Any, i: int) -> Any:
        rows = list(s.scalars(select(model).where(model.study_id == sid).order_by(model.id)))
        return rows[i % len(rows)] if rows else None

    def lead(s: Any, source: str | None, at: dt.datetime | None) -> Candidate:
        n = next(seq)
        c = Candidate(study_id=sid, seq=n, ref_code=f"{key}-{n:04d}", name_enc=TOKEN,
                      phone_enc=TOKEN, phone_index=f"{key}{n}", timezone=study.timezone,
                      source=source, created_at=at)
        s.add(c)
        s.flush()
        return c

    for o in ops:
        kind = o[0]
        if kind == "job":
            kpi_jobs.kpis_job(ctx)
            continue
        with db.session() as s:
            if kind == "lead":
                lead(s, o[1], o[2])
            elif kind == "leads_bulk":
                first = (s.scalar(select(func.max(Candidate.seq)).where(Candidate.study_id == sid))
                         or 0) + 1
                for _ in range(o[2]):
                    next(seq)
                rows = [{"name_enc": TOKEN, "phone_enc": TOKEN, "phone_index": f"{key}b{first}{i}",
                         "timezone": study.timezone, "source": o[1], "consent_to_contact": True,
                         "do_not_call": False, "status": "new", "attempts": 0,
                         "updated_at": NOW} for i in range(o[2])]
                candidates_repo.insert_many(s, sid, key, rows)
            elif kind == "call":
                c = pick(s, Candidate, o[1]) or lead(s, None, o[2])
                s.add(PrescreenCall(candidate_id=c.id, study_id=sid, coordinator_id=coords[o[4]],
                                    attempt_no=1, outcome=o[3], called_at=o[2],
                                    failed_criteria=o[5] if o[3] == "disqualified" else []))
            elif kind == "correct_call":
                call = pick(s, PrescreenCall, o[1])
                if call is not None:
                    call.called_at, call.outcome = o[2], o[3]
                    if o[3] != "disqualified":
                        call.failed_criteria = []
            elif kind == "fix_source":
                c = pick(s, Candidate, o[1])
                if c is not None:
                    c.source = o[2]
            elif kind == "refer":
                c = pick(s, Candidate, o[1])
                if c is not None and not s.scalar(select(Referral.id)
                                                  .where(Referral.candidate_id == c.id)):
                    r = referrals_repo.create(s, candidate_id=c.id, study_id=sid,
                                              site_id=site_ids[o[2]] if o[2] < 2 else None,
                                              created_at=o[3])
                    referrals_repo.add_event(s, referral_id=r.id, from_state=None,
                                             to_state="pending_approval", actor="U0COORD01",
                                             at=o[3], reason=None)
            elif kind == "advance":
                r = pick(s, Referral, o[1])
                options = TRANSITIONS[r.state] if r is not None else ()
                if options:
                    last = referrals_repo.last_event(s, r.id)
                    at = (last.at if last else r.created_at) + dt.timedelta(hours=o[2])
                    to = options[o[3] % len(options)]
                    referrals_repo.add_event(s, referral_id=r.id, from_state=r.state, to_state=to,
                                             actor="U0LEAD001", at=at, reason=None)
                    values: dict[str, Any] = {"state": to}
                    if to == "visit_scheduled":
                        values["visit_date"] = (at + dt.timedelta(days=o[2] % 20)).date()
                    assert referrals_repo.compare_and_set(s, r.id, r.version, **values)
            elif kind == "visit_date":
                r = pick(s, Referral, o[1])
                if r is not None and r.visit_date is not None:
                    r.visit_date = r.created_at.date() + dt.timedelta(days=o[2])
            elif kind == "callback":
                c = pick(s, Candidate, o[1])
                if c is not None:
                    done = o[2] + dt.timedelta(minutes=o[4]) if o[3] in ("done", "missed") else None
                    s.add(Callback(candidate_id=c.id, study_id=sid, owner_id=coords[0],
                                   due_at=o[2], remind_at=o[2], status=o[3], completed_at=done,
                                   escalated_at=o[2] if o[3] == "missed" else None))
            elif kind == "close_callbacks":
                cb = pick(s, Callback, o[1])
                if cb is not None:
                    callbacks_repo.close_many(s, [cb.id], status=o[2],
                                              completed_at=cb.due_at + dt.timedelta(minutes=5)
                                              if o[2] == "done" else None)
            elif kind == "move_callback":
                cb = pick(s, Callback, o[1])
                if cb is not None:
                    callbacks_repo.cas(s, cb.id, cb.version,
                                       due_at=cb.due_at + dt.timedelta(minutes=o[2]))
            elif kind == "overdue":
                callbacks_repo.claim_overdue(s, now=o[1], cutoff=o[1], limit=5)


def figures(k: kpis.StudyKpis) -> dict[str, Any]:
    return {f.name: getattr(k, f.name) for f in dataclasses.fields(k)}


def assert_same(ctx: AppContext, key: str, tz: str, first: int, length: int) -> None:
    start = (FIRST + dt.timedelta(days=first)).date()
    for a, b in ((start, start + dt.timedelta(days=length)),
                 (FIRST.date() - dt.timedelta(days=1), FIRST.date() + dt.timedelta(days=DAYS))):
        p = kpis.range_period(a, b, tz)
        for site in (None, "S1"):
            rolled = kpis.study_kpis(ctx, key, p, site_key=site)
            raw = kpis.study_kpis(ctx, key, p, site_key=site, use_rollups=False)
            assert figures(rolled) == figures(raw)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tz=st.sampled_from(ZONES), ops=st.lists(op, min_size=1, max_size=40),
       finish_with_job=st.booleans(), first=st.integers(0, DAYS - 1), length=st.integers(0, 9),
       now=st.one_of(st.just(NOW), instant))
def test_every_figure_from_the_rollups_equals_the_raw_definition(
        studies: Database, tz: str, ops: list[tuple[Any, ...]], finish_with_job: bool,
        first: int, length: int, now: dt.datetime) -> None:
    """`now` inside the history makes its today and yesterday kept per 15-minute slot."""
    ctx = make_ctx(studies, now)
    key = new_study(studies, tz)
    kpi_jobs.kpis_job(ctx)  # built (empty) from the start: later changes arrive as marks
    apply(studies, ctx, key, ops)
    if finish_with_job:
        kpi_jobs.kpis_job(ctx)
    assert_same(ctx, key, tz, first, length)


def test_a_history_with_every_kind_of_change_is_exact_before_and_after_the_job(
        studies: Database) -> None:
    """One fixed history, so the property test's pieces are known to run: the job consumes
    the marks, the rollups carry the figures, corrections land on the right days."""
    ctx = make_ctx(studies)
    tz = "America/New_York"
    key = new_study(studies, tz)
    kpi_jobs.kpis_job(ctx)
    day = dt.timedelta(days=1)
    ops: list[tuple[Any, ...]] = [("lead", "web-ads", FIRST + 2 * day), ("lead", None, FIRST + 9 * day)]
    for i in range(12):
        ops.append(("call", i % 2, FIRST + (i + 3) * day + dt.timedelta(hours=i),
                    ["pre_qualified", "disqualified", "no_answer"][i % 3], i % 2, ["age", "dx"]))
    ops += [("refer", 0, 0, FIRST + 10 * day), ("advance", 0, 30, 0), ("advance", 0, 30, 0),
            ("advance", 0, 30, 0), ("advance", 0, 30, 0), ("callback", 0, FIRST + 4 * day, "done", 10),
            ("callback", 1, FIRST + 5 * day, "scheduled", 0), ("overdue", FIRST + 6 * day)]
    apply(studies, ctx, key, ops)
    with studies.session() as s:
        assert s.scalar(select(func.count()).select_from(KpiMark)) > 0
    assert_same(ctx, key, tz, 0, DAYS)  # every changed day read from the raw rows
    kpi_jobs.kpis_job(ctx)
    with studies.session() as s:
        assert s.scalar(select(func.count()).select_from(KpiMark)) == 0
        assert s.scalar(select(func.count()).select_from(KpiCount)) > 0
    p = kpis.range_period(FIRST.date(), (FIRST + DAYS * day).date(), tz)
    k = kpis.study_kpis(ctx, key, p)
    assert k.calls == 12 and k.prequalified == 4 and k.callbacks_due == 2
    assert k.referrals.get("visit_scheduled") == 1 and k.median_days_referral_to_visit is not None
    assert_same(ctx, key, tz, 0, DAYS)
    # a late correction: a call moves to another day; the figures follow at once
    apply(studies, ctx, key, [("correct_call", 0, FIRST + 13 * day, "not_interested"),
                              ("fix_source", 1, "radio")])
    assert_same(ctx, key, tz, 0, DAYS)
    assert_same(ctx, key, tz, 13, 0)


def test_today_is_kept_per_slot_so_a_read_recomputes_only_the_minutes_that_changed(
        studies: Database) -> None:
    """Today and yesterday are kept per 15-minute slot: after the job, a new call marks one
    slot, the read recomputes that slot alone, and the job folds it back into the day."""
    tz = "America/New_York"
    hour = dt.timedelta(hours=1)
    now = FIRST + dt.timedelta(days=5, hours=20)  # 16:00 in New York
    ctx = make_ctx(studies, now)
    key = new_study(studies, tz)
    kpi_jobs.kpis_job(ctx)
    calls = [("call", 0, now - i * hour, ["pre_qualified", "no_answer"][i % 2], i % 2, [])
             for i in range(1, 7)]
    apply(studies, ctx, key, [("lead", "radio", now - 8 * hour), ("lead", None, now - 12 * hour),
                              ("call", 1, now - 11 * hour, "no_answer", 0, []), *calls,
                              ("callback", 0, now - 2 * hour, "done", 5), ("refer", 0, 1, now - hour)])
    kpi_jobs.kpis_job(ctx)
    with studies.session() as s:
        assert s.scalar(select(func.count()).select_from(KpiSlotDay)) == 1  # today
        slots = s.scalars(select(KpiSlotCount.slot).distinct()).all()
    assert len(slots) == 9  # two leads and seven calls (the referral and callback share theirs)
    # a call, a correction, and a second referral in the first one's slot (both medians' values
    # of that slot are read from the raw rows, the first one's stored value is not counted twice)
    apply(studies, ctx, key, [("call", 0, now - dt.timedelta(minutes=5), "disqualified", 0,
                               ["age"]), ("correct_call", 1, now - 3 * hour, "not_interested"),
                              ("refer", 1, 0, now - hour + dt.timedelta(minutes=1))])
    with studies.session() as s:
        assert s.scalar(select(func.count()).select_from(KpiMark)) > 0
    day = kpis.day_period(rollups_day(now, tz), tz)
    assert kpis.study_kpis(ctx, key, day).calls == 8
    assert_same(ctx, key, tz, 4, 2)
    kpi_jobs.kpis_job(ctx)
    assert_same(ctx, key, tz, 4, 2)
    # two days later today's slots have become day rows only
    later = make_ctx(studies, now + dt.timedelta(days=2))
    apply(studies, later, key, [("call", 0, now + dt.timedelta(days=2), "no_answer", 0, [])])
    kpi_jobs.kpis_job(later)
    with studies.session() as s:
        assert s.scalar(select(KpiSlotDay.day)) == rollups_day(now + dt.timedelta(days=2), tz)
    assert_same(later, key, tz, 4, 4)


def rollups_day(at: dt.datetime, tz: str) -> dt.date:
    return at.astimezone(kpis.ZoneInfo(tz)).date()


def test_rebuild_recomputes_a_study_from_its_raw_rows(studies: Database, monkeypatch: Any,
                                                     tmp_path: Any) -> None:
    ctx = make_ctx(studies)
    key = new_study(studies, "Europe/London")
    apply(studies, ctx, key, [("lead", "radio", FIRST), ("call", 0, FIRST, "pre_qualified", 0, []),
                              ("call", 0, FIRST + dt.timedelta(days=3), "no_answer", 1, [])])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", studies.url)
    monkeypatch.setenv("PRESCREEN_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    out = io.StringIO()
    assert cli.main(["kpis", "rebuild", "--study", key], out=out) == 0
    assert f"{key}: 4 day(s) rebuilt" in out.getvalue()
    with studies.session() as s:
        sid = s.scalar(select(Study.id).where(Study.key == key))
        assert s.scalar(select(func.sum(KpiCount.n)).where(
            KpiCount.study_id == sid, KpiCount.figure == "call")) == 2
    assert cli.main(["kpis", "rebuild", "--study", "NOPE"], out=io.StringIO()) == 2
