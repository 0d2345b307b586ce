"""Story: the study lead reads the same KPI figures in the digest, /prescreen stats and the
export. Every figure is computed by the database; here a generated data set is checked against
a plain-Python count over the same rows, using study-local days (a DST day has 23 or 25 hours)."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot import kpis
from bot.config import Settings
from bot.context import AppContext
from bot.errors import DomainError
from bot.prescreen.outcomes import OUTCOMES
from bot.referrals.states import TRANSITIONS
from storage.crypto import PHICipher
from storage.db import Database
from storage.models import Callback, Candidate, Member, PrescreenCall, Referral, ReferralEvent, Site, Study
from tests.conftest import ENCRYPTION_KEY

NY = "America/New_York"
NYZ = ZoneInfo(NY)
NOW = dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC)
SOURCES = ["web-ads", "radio", None]
CIPHER = PHICipher([ENCRYPTION_KEY])
HAPPY_PATH = ["approved", "sent_to_site", "site_contacted", "visit_scheduled", "screened",
              "enrolled"]


@dataclass
class FixedClock:
    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at


def make_ctx(db: Database, now: dt.datetime = NOW) -> AppContext:
    settings = Settings(_env_file=None, callback_escalate_minutes=30)  # type: ignore[call-arg]
    return AppContext(settings=settings, db=db, cipher=PHICipher([ENCRYPTION_KEY]),
                      slack=WebClient(token="xoxb-unused"), clock=FixedClock(now))


def candidate(s: Any, study: Study, seq: int, **kw: Any) -> Candidate:
    c = Candidate(study_id=study.id, seq=seq, ref_code=f"{study.key}-{seq:04d}",
                  name_enc=CIPHER.encrypt(f"Patient Name{seq}"),
                  phone_enc=CIPHER.encrypt(f"+1617555{seq:04d}"),
                  dob_enc=CIPHER.encrypt(f"1950-01-{seq % 28 + 1:02d}"),
                  phone_index=f"p{study.key}{seq}", timezone=NY, **kw)
    s.add(c)
    s.flush()
    return c


def rand_time(rng: random.Random, first: dt.datetime, last: dt.datetime) -> dt.datetime:
    span = int((last - first).total_seconds())
    return first + dt.timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))


def generate(db: Database, seed: int = 8) -> None:
    """~100 candidates, ~400 calls, ~80 referrals with events, ~150 callbacks around Nov 1."""
    rng = random.Random(seed)
    first, last = dt.datetime(2026, 10, 20, tzinfo=dt.UTC), dt.datetime(2026, 11, 12, tzinfo=dt.UTC)
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "ALZ")).one()
        study.options = {**(study.options or {}), "lead_sources": {
            "web-ads": {"label": "Web ads", "cost_per_lead": 35.0}, "radio": {"label": "Radio"}}}
        site = s.scalars(select(Site).where(Site.study_id == study.id)).first()
        assert site is not None
        coords = list(s.scalars(select(Member).where(Member.slack_user_id.in_(
            ["U0COORD01", "U0COORD02"]))))
        outcomes = list(OUTCOMES)
        for i in range(1, 101):
            created = rand_time(rng, first - dt.timedelta(days=5), last)
            c = candidate(s, study, i, source=rng.choice(SOURCES), created_at=created)
            if rng.random() < 0.15:
                c.unreachable_at = rand_time(rng, first, last)
            t = created
            for attempt in range(rng.randrange(0, 8)):
                t = t + dt.timedelta(hours=rng.uniform(1, 60))
                outcome = rng.choice(outcomes)
                failed = (sorted(rng.sample(["age", "dx", "region"], rng.randrange(1, 4)))
                          if outcome == "disqualified" else [])
                s.add(PrescreenCall(candidate_id=c.id, study_id=study.id,
                                    coordinator_id=rng.choice(coords).id, attempt_no=attempt + 1,
                                    outcome=outcome, failed_criteria=failed, called_at=t,
                                    notes_enc=CIPHER.encrypt(f"secret note {i}")
                                    if rng.random() < 0.3 else None))
            if rng.random() < 0.8:
                ref_at = t + dt.timedelta(hours=rng.uniform(0.1, 30))
                r = Referral(candidate_id=c.id, study_id=study.id,
                             site_id=site.id if rng.random() < 0.8 else None,
                             state="pending_approval", created_at=ref_at)
                s.add(r)
                s.flush()
                s.add(ReferralEvent(referral_id=r.id, from_state=None, to_state="pending_approval",
                                    actor="U0COORD01", at=ref_at))
                at, state = ref_at, "pending_approval"
                for _ in range(rng.randrange(0, 7)):
                    options = [x for x in TRANSITIONS[state] if x in HAPPY_PATH or rng.random() < 0.1]
                    if not options:
                        break
                    nxt = options[0] if rng.random() < 0.85 else rng.choice(options)
                    at = at + dt.timedelta(hours=rng.uniform(1, 80))
                    s.add(ReferralEvent(referral_id=r.id, from_state=state, to_state=nxt,
                                        actor="U0LEAD001", at=at))
                    state = nxt
                    if nxt == "visit_scheduled":
                        r.visit_date = (at + dt.timedelta(days=rng.randrange(1, 20))).date()
                r.state = state
            for _ in range(rng.randrange(0, 3)):
                due = rand_time(rng, first, last)
                status = rng.choice(["scheduled", "snoozed", "done", "missed", "cancelled"])
                done = None
                if status == "done":
                    done = due + dt.timedelta(minutes=rng.choice([-20, 0, 10, 30, 31, 90]))
                elif status == "missed" and rng.random() < 0.5:
                    done = due + dt.timedelta(hours=rng.uniform(1, 5))
                s.add(Callback(candidate_id=c.id, study_id=study.id, owner_id=coords[0].id,
                               due_at=due, remind_at=due, status=status, completed_at=done,
                               escalated_at=due if status == "missed" else None))


# ---- the independent computation: plain Python over every row -----------------------------

def local_day(t: dt.datetime) -> dt.date:
    return t.astimezone(NYZ).date()


def expected(db: Database, p: kpis.Period, now: dt.datetime = NOW) -> dict[str, Any]:
    def inside(t: dt.datetime | None) -> bool:
        return t is not None and p.start_day <= local_day(t) <= p.end_day

    with db.session() as s:
        calls = list(s.scalars(select(PrescreenCall)))
        cands = {c.id: c for c in s.scalars(select(Candidate))}
        refs = {r.id: r for r in s.scalars(select(Referral))}
        events = list(s.scalars(select(ReferralEvent)))
        cbs = list(s.scalars(select(Callback)))
        members = {m.id: m.slack_user_id for m in s.scalars(select(Member))}
        sites = {x.id: x.key for x in s.scalars(select(Site))}
        opts = s.scalars(select(Study).where(Study.key == "ALZ")).one().options
        out: dict[str, Any] = {}
        pc = [c for c in calls if inside(c.called_at)]
        out["calls"] = len(pc)
        out["reached"] = sum(1 for c in pc if OUTCOMES[c.outcome].reached)
        out["prequalified"] = sum(1 for c in pc if c.outcome == "pre_qualified")
        out["disqualified"] = sum(1 for c in pc if c.outcome == "disqualified")
        failed: dict[str, int] = {}
        for c in pc:
            if c.outcome == "disqualified":
                for q in c.failed_criteria:
                    failed[q] = failed.get(q, 0) + 1
        out["top_failed"] = sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        pe = [e for e in events if inside(e.at)]
        trans: dict[str, int] = {}
        by_site: dict[str, dict[str, int]] = {}
        for e in pe:
            trans[e.to_state] = trans.get(e.to_state, 0) + 1
            sk = sites.get(refs[e.referral_id].site_id or -1, "(no site)")
            by_site.setdefault(sk, {})
            by_site[sk][e.to_state] = by_site[sk].get(e.to_state, 0) + 1
        out["referrals"], out["by_site"] = trans, by_site
        due = [cb for cb in cbs if inside(cb.due_at) and cb.status != "cancelled"]
        out["callbacks_due"] = len(due)
        out["callbacks_missed"] = sum(1 for cb in due if cb.status == "missed")
        settled = [cb for cb in due if cb.status in ("done", "missed")]
        on_time = [cb for cb in settled if cb.completed_at is not None
                   and cb.completed_at <= cb.due_at + dt.timedelta(minutes=30)]
        out["callbacks_on_time_pct"] = (round(100 * len(on_time) / len(settled), 1)
                                        if settled else None)
        at = min(p.end, now)
        decided = {e.referral_id for e in events if e.from_state == "pending_approval" and e.at < at}
        out["pending_approvals_24h"] = sorted(
            (r for r in refs.values()
             if r.created_at <= at - dt.timedelta(hours=24) and r.id not in decided),
            key=lambda r: (r.created_at, r.id))
        out["pending_approvals_24h"] = [cands[r.candidate_id].ref_code
                                        for r in out["pending_approvals_24h"]]
        out["unreachable"] = [c.ref_code for c in sorted(
            (c for c in cands.values() if inside(c.unreachable_at)),
            key=lambda c: (c.unreachable_at, c.id))]
        by_coord: dict[str, dict[str, int]] = {}
        for c in pc:
            row = by_coord.setdefault(members[c.coordinator_id], {
                "calls": 0, "reached": 0, "prequalified": 0, "disqualified": 0})
            row["calls"] += 1
            row["reached"] += OUTCOMES[c.outcome].reached
            row["prequalified"] += c.outcome == "pre_qualified"
            row["disqualified"] += c.outcome == "disqualified"
        out["by_coordinator"] = by_coord
        out["funnel"] = [("calls", out["calls"]), ("reached", out["reached"]),
                         ("pre_qualified", out["prequalified"])] + [
            (st, trans.get(st, 0)) for st in
            ("approved", "sent_to_site", "visit_scheduled", "screened", "enrolled")]
        first_call: dict[int, dt.datetime] = {}
        for c in calls:
            if c.candidate_id not in first_call or c.called_at < first_call[c.candidate_id]:
                first_call[c.candidate_id] = c.called_at
        d1 = [(r.created_at - first_call[r.candidate_id]).total_seconds() / 86400
              for r in refs.values() if inside(r.created_at) and r.candidate_id in first_call]
        out["median_days_call_to_referral"] = statistics.median(d1) if d1 else None
        sched = {e.referral_id for e in pe if e.to_state == "visit_scheduled"}
        d2 = [(refs[i].visit_date - refs[i].created_at.date()).days for i in sched
              if refs[i].visit_date is not None]
        out["median_days_referral_to_visit"] = statistics.median(d2) if d2 else None
        by_source: dict[str, dict[str, Any]] = {}
        for key in {c.source or "(none)" for c in cands.values()}:
            cfg = opts["lead_sources"].get(key, {})
            src_calls = [c for c in pc if (cands[c.candidate_id].source or "(none)") == key]
            pq = sum(1 for c in src_calls if c.outcome == "pre_qualified")
            leads = sum(1 for c in cands.values()
                        if (c.source or "(none)") == key and inside(c.created_at))
            nref = sum(1 for r in refs.values() if inside(r.created_at)
                       and (cands[r.candidate_id].source or "(none)") == key)
            if not (src_calls or leads or nref):
                continue
            cost = cfg.get("cost_per_lead")
            by_source[key] = {
                "label": cfg.get("label", key), "calls": len(src_calls), "prequalified": pq,
                "prequalified_rate": round(100 * pq / len(src_calls), 1) if src_calls else None,
                "leads": leads, "referrals": nref,
                "cost_per_referral": round(leads * cost / nref, 2) if cost and nref else None}
        out["by_source"] = by_source
    return out


@pytest.mark.parametrize("spec", ["yesterday", "7d", "30d", "2026-10-25..2026-11-03", "2026-11-01"])
def test_every_kpi_matches_a_plain_python_count_over_the_rows(studies: Database, spec: str) -> None:
    generate(studies)
    ctx = make_ctx(studies)
    p = kpis.period_for(spec, tz=NY, today=dt.date(2026, 11, 6))
    got = kpis.study_kpis(ctx, "ALZ", p)
    want = expected(studies, p)
    assert got.calls > 0 or spec == "yesterday"
    for name in ("calls", "reached", "prequalified", "disqualified", "top_failed", "referrals",
                 "callbacks_due", "callbacks_missed", "callbacks_on_time_pct",
                 "pending_approvals_24h", "unreachable", "by_coordinator", "by_site", "funnel",
                 "by_source"):
        assert getattr(got, name) == want[name], name
    for name in ("median_days_call_to_referral", "median_days_referral_to_visit"):
        if want[name] is None:
            assert getattr(got, name) is None, name
        else:
            assert getattr(got, name) == pytest.approx(want[name], abs=0.051), name


def test_the_generated_data_set_exercises_every_figure(studies: Database) -> None:
    generate(studies)
    got = kpis.study_kpis(make_ctx(studies), "ALZ",
                          kpis.period_for("30d", tz=NY, today=dt.date(2026, 11, 12)))
    assert got.calls > 100 and got.reached and got.prequalified and got.disqualified
    assert got.top_failed and got.referrals.get("enrolled") and got.callbacks_missed
    assert got.callbacks_on_time_pct is not None and 0 < got.callbacks_on_time_pct < 100
    assert got.unreachable and got.by_site.get("BOS") and len(got.by_coordinator) == 2
    assert got.median_days_call_to_referral and got.median_days_referral_to_visit
    assert got.by_source["web-ads"]["cost_per_referral"] is not None
    assert got.by_source["radio"]["cost_per_referral"] is None  # no cost configured


def test_site_filter_limits_referral_figures_to_that_site(studies: Database) -> None:
    generate(studies)
    ctx = make_ctx(studies)
    p = kpis.period_for("30d", tz=NY, today=dt.date(2026, 11, 12))
    whole, bos = kpis.study_kpis(ctx, "ALZ", p), kpis.study_kpis(ctx, "ALZ", p, site_key="bos")
    assert bos.referrals == whole.by_site["BOS"] != whole.referrals
    assert list(bos.by_site) == ["BOS"]
    with pytest.raises(DomainError, match="no site `XYZ`"):
        kpis.study_kpis(ctx, "ALZ", p, site_key="XYZ")


def test_fall_back_day_has_25_hours_and_both_0130s_count_to_it(studies: Database) -> None:
    day = kpis.day_period(dt.date(2026, 11, 1), NY)
    assert day.end - day.start == dt.timedelta(hours=25)
    assert day.start == dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC)  # 00:00 EDT
    edt_0130 = dt.datetime(2026, 11, 1, 1, 30, tzinfo=NYZ, fold=0)
    est_0130 = dt.datetime(2026, 11, 1, 1, 30, tzinfo=NYZ, fold=1)
    assert est_0130.astimezone(dt.UTC) - edt_0130.astimezone(dt.UTC) == dt.timedelta(hours=1)
    times = [
        edt_0130, est_0130,
        dt.datetime(2026, 11, 1, 23, 59, 59, tzinfo=NYZ),  # 04:59:59 UTC on Nov 2
        dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=NYZ),  # the day before
        dt.datetime(2026, 11, 2, 0, 0, tzinfo=NYZ),  # the day after
    ]
    _calls_at(studies, times)
    ctx = make_ctx(studies)
    assert kpis.study_kpis(ctx, "ALZ", day).calls == 3
    assert kpis.study_kpis(ctx, "ALZ", kpis.day_period(dt.date(2026, 10, 31), NY)).calls == 1
    assert kpis.study_kpis(ctx, "ALZ", kpis.day_period(dt.date(2026, 11, 2), NY)).calls == 1


def test_spring_forward_day_has_23_hours(studies: Database) -> None:
    day = kpis.day_period(dt.date(2026, 3, 8), NY)
    assert day.end - day.start == dt.timedelta(hours=23)
    _calls_at(studies, [dt.datetime(2026, 3, 8, 0, 0, tzinfo=NYZ),  # 05:00 UTC
                        dt.datetime(2026, 3, 8, 3, 0, tzinfo=NYZ),  # right after the gap
                        dt.datetime(2026, 3, 8, 23, 59, tzinfo=NYZ),  # 03:59 UTC Mar 9
                        dt.datetime(2026, 3, 9, 0, 0, tzinfo=NYZ)])  # next day
    assert kpis.study_kpis(make_ctx(studies), "ALZ", day).calls == 3
    week = kpis.period_for("7d", tz=NY, today=dt.date(2026, 3, 10))
    assert week.end - week.start == dt.timedelta(days=7, hours=-1)


def _calls_at(db: Database, times: list[dt.datetime]) -> None:
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "ALZ")).one()
        coord = s.scalars(select(Member).where(Member.slack_user_id == "U0COORD01")).one()
        c = candidate(s, study, 1)
        for i, t in enumerate(times):
            s.add(PrescreenCall(candidate_id=c.id, study_id=study.id, coordinator_id=coord.id,
                                attempt_no=i + 1, outcome="no_answer", called_at=t))


def test_period_specs() -> None:
    today = dt.date(2026, 11, 21)
    assert kpis.period_for("today", tz=NY, today=today).start_day == today
    y = kpis.period_for("yesterday", tz=NY, today=today)
    assert (y.start_day, y.end_day) == (dt.date(2026, 11, 20),) * 2
    w = kpis.period_for("7d", tz=NY, today=today)
    assert (w.start_day, w.end_day, w.days) == (dt.date(2026, 11, 15), today, 7)
    r = kpis.period_for("2026-11-01..2026-11-21", tz=NY, today=today)
    assert (r.start_day, r.end_day, r.days) == (dt.date(2026, 11, 1), today, 21)
    assert r.end - r.start == dt.timedelta(days=21, hours=1)  # includes the 25-hour day
    one = kpis.period_for("2026-11-21", tz="America/Chicago", today=today)
    assert one.start == dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC)
    for bad, msg in [("last week", "don't understand"), ("2026-13-01", "not a date"),
                     ("2026-11-21..2026-11-01", "ends"), ("0d", "between"),
                     ("2025-01-01..2026-11-01", "at most")]:
        with pytest.raises(DomainError, match=msg):
            kpis.period_for(bad, tz=NY, today=today)


def test_funnel_conversion_and_stats_rendering(studies: Database) -> None:
    generate(studies)
    k = kpis.study_kpis(make_ctx(studies), "ALZ",
                        kpis.period_for("30d", tz=NY, today=dt.date(2026, 11, 12)))
    conv = kpis.funnel_conversion(k.funnel)
    assert conv[0][2] is None and conv[1][2] == round(100 * k.reached / k.calls, 1)
    text, blocks = kpis.format_stats(k)
    assert str(k.calls) in text and len(blocks) <= 50
    body = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert f"*Calls* {k.calls}" in body and "<@U0COORD01>" in body and "Web ads" in body
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
