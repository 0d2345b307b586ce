"""`/prescreen next` and `/prescreen queue` with 100,000 open leads: how long the work-queue
queries take (next_lead and the queue list, p50/p99), with leads spread over US time zones and
states so the calling-window filter has to skip closed ones. Generates its own data.

Usage: python -m bench.next_lead [--leads 100000] [--calls 200] [--database-url URL]"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from cryptography.fernet import Fernet
from sqlalchemy import insert, select, text

from bench._harness import bench_context, bench_database, db_label, fresh_database, percentile, table
from bot.leads.queue import NextLead, my_work, next_lead
from storage.db import Database
from storage.models import Callback, Candidate, Member, Study

COORD = "U0BCOORD1"
STUDY_YAML = """
studies:
  - key: BEN
    title: Benchmark study
    channel: C0BENCH01
    timezone: America/New_York
    sites:
      - {key: S1, name: Site One, timezone: America/New_York}
members:
  - {slack_id: U0BCOORD1, timezone: America/New_York, roles: {BEN: coordinator}}
  - {slack_id: U0BCOORD2, timezone: America/Chicago, roles: {BEN: coordinator}}
"""
ZONES = [("America/New_York", ["NY", "MA", "FL", "GA", "PA"]),
         ("America/Chicago", ["IL", "TX", "MN", "WI"]),
         ("America/Denver", ["CO", "UT"]),
         ("America/Phoenix", ["AZ"]),
         ("America/Los_Angeles", ["CA", "WA", "OR"]),
         ("America/Anchorage", ["AK"]),
         ("Pacific/Honolulu", ["HI"])]
# Tue 13:30 UTC: 08:30 New York (open), 07:30 Chicago and west (closed)
# Wed 01:30 UTC: 20:30 New York (Florida closed), 19:30 Chicago … 15:30 Honolulu (open)
# Tue 02:30 UTC (Mon evening in the US): no callback due yet, so `next` searches untouched leads
MOMENTS = {"morning (only Eastern open)": dt.datetime(2026, 11, 24, 13, 30, tzinfo=dt.UTC),
           "evening (FL closed, west open)": dt.datetime(2026, 11, 25, 1, 30, tzinfo=dt.UTC),
           "no callback due (untouched leads)": dt.datetime(2026, 11, 24, 2, 30, tzinfo=dt.UTC)}


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at


def seed(db: Database, n: int, now: dt.datetime, key: str, mine: float) -> dict[str, int]:
    rnd = random.Random(42)
    token = Fernet(key.encode()).encrypt(b"x").decode()
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "BEN")).one()
        me = s.scalars(select(Member.id).where(Member.slack_user_id == COORD)).one()
        other = s.scalars(select(Member.id).where(Member.slack_user_id != COORD)).first()
        rows, kinds = [], []
        for i in range(n):
            tz, states = rnd.choice(ZONES)
            kind = rnd.random()
            attempts = 0 if kind < 0.7 else rnd.randint(1, 3)
            created = now - dt.timedelta(minutes=rnd.randint(10, 60 * 24 * 60))
            rows.append({"study_id": study.id, "seq": i + 1, "ref_code": f"BEN-{i + 1:06d}",
                         "name_enc": token, "phone_enc": token, "phone_index": f"p{i}",
                         "region": rnd.choice(states), "timezone": tz, "status": "needs_call",
                         "attempts": attempts, "last_outcome": "no_answer" if attempts else None,
                         "consent_to_contact": True, "do_not_call": rnd.random() < 0.01,
                         "source": rnd.choice(["web form", "partner", "ads"]),
                         "owner_id": me if rnd.random() < mine else other,
                         "created_at": created, "updated_at": created})
            kinds.append(kind)
        for start in range(0, n, 5000):
            s.execute(insert(Candidate), rows[start:start + 5000])
        ids = s.scalars(select(Candidate.id).order_by(Candidate.id)).all()
        callbacks = []
        for cid, row, kind in zip(ids, rows, kinds, strict=True):
            if kind < 0.7:
                continue
            requested = kind > 0.95
            due = now + dt.timedelta(minutes=rnd.randint(-600, 4000))
            callbacks.append({"candidate_id": cid, "study_id": study.id, "owner_id": row["owner_id"],
                              "due_at": due, "remind_at": due - dt.timedelta(minutes=10),
                              "status": "scheduled", "kind": "requested" if requested else "cadence",
                              "window_check": {}, "version": 1, "reminded_late": False,
                              "created_at": now})
        for start in range(0, len(callbacks), 5000):
            s.execute(insert(Callback), callbacks[start:start + 5000])
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return {"leads": n, "callbacks": len(callbacks)}


def timed(fn, calls: int) -> tuple[list[float], object]:  # type: ignore[no-untyped-def]
    out = None
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--mine", type=float, default=1.0,
                    help="share of the leads the caller owns (1.0 = all of them, the worst case)")
    ap.add_argument("--database-url")
    args = ap.parse_args()
    with fresh_database(args.database_url) as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    db = bench_database(url, STUDY_YAML)
    key = Fernet.generate_key().decode()
    first = next(iter(MOMENTS.values()))
    t0 = time.perf_counter()
    sizes = seed(db, args.leads, first, key, args.mine)
    seeded = time.perf_counter() - t0
    clock = Clock(first)
    ctx = bench_context(url, db, key, clock=clock)
    label = db_label(url)
    rows = []
    for name, at in MOMENTS.items():
        clock.at = at
        times, result = timed(lambda: next_lead(ctx, COORD), args.calls)
        picked = result.ref if isinstance(result, NextLead) else "none"
        rows.append((f"next_lead · {name}", f"{sizes['leads']:,}", f"{percentile(times, 50) * 1000:.1f}",
                     f"{percentile(times, 99) * 1000:.1f}", label))
        why = result.why if isinstance(result, NextLead) else ""
        print(f"{name}: next = {picked} ({why})")
        qtimes, q = timed(lambda: my_work(ctx, COORD, limit=20), max(args.calls // 4, 10))
        rows.append((f"queue list (top 20 + count) · {name}", f"{sizes['leads']:,}",
                     f"{percentile(qtimes, 50) * 1000:.1f}", f"{percentile(qtimes, 99) * 1000:.1f}",
                     label))
        print(f"{name}: queue total {q.total:,}")  # type: ignore[attr-defined]
    print(table(rows, ("what", "open leads", "p50 ms", "p99 ms", "database")))
    print(f"seeded {sizes['leads']:,} leads and {sizes['callbacks']:,} callbacks in {seeded:.1f} s; "
          f"caller owns {args.mine:.0%}")
    db.dispose()


if __name__ == "__main__":
    main()
