"""KPI queries at scale: 10,000,000 calls, 1,000,000 referrals (with their events), 2,500,000
candidates and 2,000,000 callbacks over a year by default, then how long `study_kpis` takes for
the daily digest (yesterday, plus the 7 days before for the comparison) and for /prescreen stats
(query + render) over 1 to 365 days.

Rows are bulk-loaded (COPY on PostgreSQL, executemany on SQLite) straight into the tables; then
`kpis rebuild` builds the daily rollups (timed); 300 calls and 30 callbacks are written today
through the ORM, the `kpis` job runs, and 100 more calls follow in the last minute, so today
carries marks, as in production between two runs of the job (its marked 15-minute slot is
read from the raw rows). `--raw` times the raw GROUP BY path instead (the "before").
`--loaded` times a database this script loaded before (URL of that very database) instead of
loading a new one (`--keep-rollups`: without rebuilding its rollups first).

Usage: python -m bench.kpi_queries [--database-url URL] [--calls 10000000] [--referrals 1000000]
       [--runs 15] [--raw] [--loaded [--keep-rollups]]"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select, text

from bench._harness import bench_context, bench_database, db_label, fresh_database, percentile, table
from bot import kpi_jobs, kpis
from storage.db import Database
from storage.models import Callback, KpiMark, Member, PrescreenCall, Site, Study
from storage.repositories import kpi_rollups

TZ = "America/New_York"
NOW = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)  # Monday 09:00 in New York
DAYS = 365
COORDS = [f"U0BCOORD{i}" for i in range(1, 9)]
YAML = f"""
studies:
  - key: BEN
    title: Benchmark study
    channel: C0BENCH01
    timezone: {TZ}
    sites:
      - {{key: S1, name: Site One, timezone: {TZ}}}
      - {{key: S2, name: Site Two, timezone: {TZ}}}
      - {{key: S3, name: Site Three, timezone: America/Chicago}}
      - {{key: S4, name: Site Four, timezone: America/Chicago}}
    questions:
      - {{id: age, text: "Age in years", kind: number, eligible: {{min: 18, max: 90}}}}
      - {{id: dx, text: "Diagnosed?", kind: yes_no, eligible: {{equals: false}}}}
      - {{id: region, text: "Region", kind: choice, options: [NE, SE], eligible: {{in: [NE]}}}}
members:
""" + "".join(f"  - {{slack_id: {u}, timezone: {TZ}, roles: {{BEN: coordinator}}}}\n"
              for u in COORDS)
OUTCOMES = (["no_answer"] * 30 + ["left_voicemail"] * 20 + ["pre_qualified"] * 12
            + ["disqualified"] * 15 + ["callback_requested"] * 10 + ["considering"] * 5
            + ["not_interested"] * 5 + ["wrong_number"] * 2 + ["do_not_call"])
SOURCES = ["web-ads", "radio", "referral-partner", "clinic-db"]
CHAIN = ["pending_approval", "approved", "sent_to_site", "site_contacted", "visit_scheduled",
         "screened", "enrolled"]
BATCH = 50_000


def when(rng: random.Random) -> dt.datetime:
    return NOW - dt.timedelta(seconds=rng.randrange(DAYS * 86400), microseconds=rng.randrange(10**6))


class Loader:
    """Bulk rows into a table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pg = db.engine.dialect.name == "postgresql"

    def value(self, v: Any) -> Any:
        if isinstance(v, dt.datetime):
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
            return v if self.pg else v.strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(v, dt.date):
            return v if self.pg else v.isoformat()
        if isinstance(v, list | dict):
            return json.dumps(v)
        if isinstance(v, bool) and not self.pg:
            return int(v)
        return v

    def load(self, table_name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        n = 0
        raw = self.db.engine.raw_connection()
        try:
            cur = raw.cursor()
            batch: list[tuple[Any, ...]] = []
            indexes: list[str] = []
            if not self.pg:  # as a bulk load does: drop the secondary indexes, build them after
                cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                            "tbl_name = ? AND sql IS NOT NULL", (table_name,))
                for name, sql in cur.fetchall():
                    indexes.append(sql)
                    cur.execute(f'DROP INDEX "{name}"')

            def flush() -> None:
                if not batch:
                    return
                if self.pg:
                    with cur.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as cp:  # type: ignore[attr-defined]
                        for r in batch:
                            cp.write_row(r)
                else:
                    cur.executemany(f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' * len(columns))})", batch)
                batch.clear()

            for r in rows:
                batch.append(tuple(self.value(v) for v in r))
                n += 1
                if len(batch) >= BATCH:
                    flush()
            flush()
            for sql in indexes:
                cur.execute(sql)
            raw.commit()
        finally:
            raw.close()
        return n


def generate(db: Database, n_calls: int, n_referrals: int, seed: int = 8) -> dict[str, int]:
    rng = random.Random(seed)
    token = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "BEN")).one()
        study.options = {**(study.options or {}), "lead_sources": {
            "web-ads": {"label": "Web ads", "cost_per_lead": 35.0},
            "radio": {"label": "Radio", "cost_per_lead": 80.0}}}
        sid = study.id
        site_ids = list(s.scalars(select(Site.id).where(Site.study_id == sid)))
        coord_ids = list(s.scalars(select(Member.id).where(Member.slack_user_id.in_(COORDS))))
    load = Loader(db)
    n_cands = max(n_calls // 4, n_referrals * 2)
    created = [when(rng) for _ in range(n_cands)]
    load.load("candidates", (
        "id", "study_id", "seq", "ref_code", "name_enc", "phone_enc", "phone_index", "timezone",
        "consent_to_contact", "do_not_call", "status", "attempts", "source", "unreachable_at",
        "created_at", "updated_at"), (
        (i + 1, sid, i + 1, f"BEN-{i + 1:06d}", token, token, f"p{i}", TZ, True, False, "new", 0,
         rng.choice(SOURCES), created[i] + dt.timedelta(days=rng.uniform(3, 20))
         if rng.random() < 0.1 else None, created[i], created[i])
        for i in range(n_cands)))

    def calls() -> Iterable[tuple[Any, ...]]:
        for i in range(n_calls):
            outcome = rng.choice(OUTCOMES)
            failed = (rng.sample(["age", "dx", "region"], rng.randrange(1, 3))
                      if outcome == "disqualified" else [])
            yield (i + 1, rng.randrange(1, n_cands + 1), sid, rng.choice(coord_ids),
                   rng.randrange(1, 6), outcome, {}, outcome == "pre_qualified"
                   if outcome in ("pre_qualified", "disqualified") else None, failed, when(rng),
                   NOW)
    load.load("prescreen_calls", (
        "id", "candidate_id", "study_id", "coordinator_id", "attempt_no", "outcome", "answers",
        "eligible", "failed_criteria", "called_at", "created_at"), calls())

    referred = rng.sample(range(1, n_cands + 1), n_referrals)
    referrals: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    for rid, cid in enumerate(referred, start=1):
        at = when(rng)
        start = at
        steps = rng.choice([1, 1, 2, 2, 3, 4, 5, 6, 7])
        state, visit = "pending_approval", None
        prev: str | None = None
        for k in range(steps):
            state = CHAIN[k]
            if at > NOW:
                break
            events.append((len(events) + 1, rid, prev, state, "U0BCOORD1", at))
            if state == "visit_scheduled":
                visit = (at + dt.timedelta(days=rng.randrange(2, 21))).date()
            prev = state
            at = at + dt.timedelta(hours=rng.uniform(2, 24 * 6))
        state = prev or "pending_approval"
        referrals.append((rid, cid, sid, rng.choice(site_ids), state, 1, visit, start, start))
    load.load("referrals", ("id", "candidate_id", "study_id", "site_id", "state", "version",
                            "visit_date", "created_at", "updated_at"), referrals)
    load.load("referral_events", ("id", "referral_id", "from_state", "to_state", "actor", "at"),
              events)

    def callbacks() -> Iterable[tuple[Any, ...]]:
        for i in range(n_referrals * 2):
            due = when(rng)
            status = rng.choice(["done"] * 6 + ["missed", "cancelled"] + (
                ["scheduled", "snoozed"] if due > NOW - dt.timedelta(days=1) else ["done"]))
            done = (due + dt.timedelta(minutes=rng.uniform(-30, 90)) if status == "done"
                    else due + dt.timedelta(hours=3) if status == "missed" and rng.random() < 0.5
                    else None)
            yield (i + 1, rng.randrange(1, n_cands + 1), sid, rng.choice(coord_ids), due, due,
                   {}, status, "requested", False, due if status == "missed" else None, done,
                   due, 1)
    n_cb = load.load("callbacks", (
        "id", "candidate_id", "study_id", "owner_id", "due_at", "remind_at", "window_check",
        "status", "kind", "reminded_late", "escalated_at", "completed_at", "created_at",
        "version"), callbacks())
    # what autovacuum does after a bulk load: statistics, and the visibility map that lets
    # PostgreSQL answer from the covering indexes alone
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if load.pg else "ANALYZE"))
    return {"candidates": n_cands, "calls": n_calls, "referrals": n_referrals,
            "referral events": len(events), "callbacks": n_cb}


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {name: int(s.scalar(text(f"SELECT count(*) FROM {table_name}")) or 0)
                for name, table_name in (("candidates", "candidates"), ("calls", "prescreen_calls"),
                                         ("referrals", "referrals"),
                                         ("referral events", "referral_events"),
                                         ("callbacks", "callbacks"))}


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url")
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--referrals", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--raw", action="store_true", help="time the raw GROUP BY path (no rollups)")
    ap.add_argument("--loaded", action="store_true",
                    help="--database-url is a database this script loaded before: time it again")
    ap.add_argument("--keep-rollups", action="store_true",
                    help="with --loaded: do not rebuild the rollups first")
    args = ap.parse_args()
    if args.loaded:
        if not args.database_url:
            ap.error("--loaded needs --database-url")
        run(args.database_url, args.calls, args.referrals, args.runs, raw=args.raw, loaded=True,
            keep=args.keep_rollups)
        return
    with fresh_database(args.database_url) as url:
        run(url, args.calls, args.referrals, args.runs, raw=args.raw)


def live_today(db: Database, n: int = 300, seed: int = 9, *, last_minute: bool = False) -> None:
    """Today's work through the ORM (so the rollup marks are written as in production): calls
    spread over the day so far, or (`last_minute`) logged since the `kpis` job last ran, to
    candidates already called before (a referral follows a call, so no new 'first call')."""
    rng = random.Random(seed)
    today_start = kpis.day_period(NOW.astimezone(kpis.ZoneInfo(TZ)).date(), TZ).start
    if last_minute:
        today_start = NOW - dt.timedelta(minutes=1)
    if db.is_postgres:  # COPY with explicit ids leaves the sequences behind
        with db.session() as s:
            for t in ("prescreen_calls", "callbacks"):
                s.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                               f"(SELECT max(id) FROM {t}))"))
    with db.session() as s:
        sid = s.scalars(select(Study.id).where(Study.key == "BEN")).one()
        coord = s.scalars(select(Member.id).where(Member.slack_user_id == COORDS[0])).one()
        called = list(s.scalars(select(PrescreenCall.candidate_id)
                                .where(PrescreenCall.called_at < today_start).limit(5000)))
        for i in range(n):
            at = today_start + dt.timedelta(seconds=rng.randrange(int((NOW - today_start)
                                                                      .total_seconds())))
            s.add(PrescreenCall(candidate_id=rng.choice(called), study_id=sid,
                                coordinator_id=coord, attempt_no=2, outcome=rng.choice(OUTCOMES),
                                failed_criteria=[], called_at=at))
            if i % 10 == 0:
                s.add(Callback(candidate_id=rng.choice(called), study_id=sid, owner_id=coord,
                               due_at=at, remind_at=at, status="done", completed_at=at))


def run(url: str, n_calls: int, n_referrals: int, runs: int, *, raw: bool = False,
        loaded: bool = False, keep: bool = False) -> None:
    t0 = time.perf_counter()
    if loaded:
        db = Database(url)
        sizes = counts(db)
    else:
        db = bench_database(url, YAML)
        sizes = generate(db, n_calls, n_referrals)
    load_s = time.perf_counter() - t0

    class Clock:
        def now(self) -> dt.datetime:
            return NOW

    ctx = bench_context(url, db, None, clock=Clock())
    rebuild_s = 0.0
    if not raw:
        if not (loaded and keep):
            t0 = time.perf_counter()
            kpi_jobs.rebuild(ctx, "BEN")
            rebuild_s = time.perf_counter() - t0
            print(f"rollups rebuilt in {rebuild_s:.0f} s", flush=True)
        # the steady state: the `kpis` job ran a minute ago, what was written since is marked
        live_today(db)
        kpi_jobs.kpis_job(ctx)
        live_today(db, n=100, seed=10, last_minute=True)
        with db.session() as s:
            marked = {kpi_rollups.slot_of(at) for at in s.scalars(select(KpiMark.at))}
        print(f"marked 15-minute slots at the start of the timings: {len(marked)}", flush=True)
    today = NOW.astimezone(kpis.ZoneInfo(TZ)).date()
    yesterday = kpis.period_for("yesterday", tz=TZ, today=today)
    week_before = kpis.range_period(yesterday.start_day - dt.timedelta(days=7),
                                    yesterday.start_day - dt.timedelta(days=1), TZ)
    month = kpis.period_for("30d", tz=TZ, today=today)

    rollups = not raw

    def digest() -> None:
        kpis.study_kpis(ctx, "BEN", yesterday, use_rollups=rollups)
        kpis.study_kpis(ctx, "BEN", week_before, use_rollups=rollups)

    def stats(p: kpis.Period) -> Callable[[], Any]:
        return lambda: kpis.format_stats(kpis.study_kpis(ctx, "BEN", p, use_rollups=rollups))

    k = kpis.study_kpis(ctx, "BEN", month, use_rollups=rollups)
    label = db_label(url) + (" raw rows" if raw else " rollups")
    rows = []
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("digest: yesterday + previous 7 days", digest),
        ("digest: yesterday only", lambda: kpis.study_kpis(ctx, "BEN", yesterday,
                                                           use_rollups=rollups))]
    for spec in ("today", "7d", "30d", "90d", "365d"):
        cases.append((f"/prescreen stats {spec} (query + render)",
                      stats(kpis.period_for(spec, tz=TZ, today=today))))
    for name, fn in cases:
        fn()  # warm-up
        values = timed(fn, runs)
        rows.append((name, f"{percentile(values, 50) * 1000:.0f} ms",
                     f"{percentile(values, 99) * 1000:.0f} ms",
                     f"{statistics.mean(values) * 1000:.0f} ms", label))
    print(f"data: {', '.join(f'{v:,} {n}' for n, v in sizes.items())}; loaded in {load_s:.0f} s"
          + (f"; rollups rebuilt in {rebuild_s:.0f} s" if not raw else ""))
    print(f"30d sanity: {k.calls:,} calls, {k.reached:,} reached, {k.prequalified:,} pre-qualified, "
          f"{sum(k.referrals.values()):,} referral transitions, {k.callbacks_due:,} callbacks due")
    print(table(rows, ("what", "p50", "p99", "mean", "database")) + f"\n({runs} runs each)")
    db.dispose()


if __name__ == "__main__":
    main()
