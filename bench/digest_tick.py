"""Digests: how long the `digests` job takes when N coordinators' "your day" DMs fall due at
the same minute (build + claim + queue), then the steady-state tick when everything is sent
(one query for all scopes). Generates its own data; the study digests need bot.kpis.

Usage: python -m bench.digest_tick [--coordinators 300] [--database-url URL]"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from bench._harness import STUDY_YAML, bench_context, bench_database, db_label, fresh_database, table
from bot.digests import your_day
from bot.digests.runs import TickResult
from storage.db import Database
from storage.models import Callback, Candidate, DigestRun, Member, Membership, OutboxMessage, Study

EIGHT_NY = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at


def seed(db: Database, n: int, key: str, per_member: int = 5) -> None:
    token = Fernet(key.encode()).encrypt(b"x").decode()
    with db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "BEN")).one()
        s.execute(insert(Member), [{"slack_user_id": f"U0B{i:07d}", "timezone": "America/New_York",
                                    "active": True, "created_at": EIGHT_NY} for i in range(n)])
        members = s.scalars(select(Member.id).where(Member.slack_user_id.like("U0B0%"))).all()
        s.execute(insert(Membership), [{"member_id": m, "study_id": study.id, "role": "coordinator"}
                                       for m in members])
        rows = []
        seq = 0
        for m in members:
            for _ in range(per_member):
                seq += 1
                rows.append({"study_id": study.id, "seq": seq, "ref_code": f"BEN-{seq:06d}",
                             "name_enc": token, "phone_enc": token, "phone_index": f"p{seq}",
                             "timezone": "America/Chicago", "status": "callback", "attempts": 1,
                             "owner_id": m, "consent_to_contact": True, "do_not_call": False,
                             "created_at": EIGHT_NY, "updated_at": EIGHT_NY})
        s.execute(insert(Candidate), rows)
        cands = s.execute(select(Candidate.id, Candidate.owner_id).order_by(Candidate.id)).all()
        s.execute(insert(Callback), [
            {"candidate_id": cid, "study_id": study.id, "owner_id": owner,
             "due_at": EIGHT_NY + dt.timedelta(hours=1 + i % 8), "remind_at": EIGHT_NY,
             "status": "scheduled", "kind": "requested", "window_check": {}, "version": 1,
             "reminded_late": False, "created_at": EIGHT_NY} for i, (cid, owner) in enumerate(cands)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coordinators", type=int, default=300)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    with fresh_database(args.database_url) as url:
        run(args.coordinators, url)


def run(n: int, url: str) -> None:
    db = bench_database(url, STUDY_YAML)
    key = Fernet.generate_key().decode()
    seed(db, n, key)
    ctx = bench_context(url, db, key, clock=Clock(EIGHT_NY))
    # the runs before this one are recorded, as on a system that has been running
    with db.session() as s:
        s.execute(insert(DigestRun), [{"scope": f"yourday:{sid}", "period": "2026-11-23",
                                       "status": "sent", "late": False, "created_at": EIGHT_NY}
                                      for sid, _ in your_day.coordinators(ctx)])

    t0 = time.perf_counter()
    first = TickResult()
    your_day.tick(ctx, first)
    due_tick = time.perf_counter() - t0
    idle = []
    for _ in range(5):
        t0 = time.perf_counter()
        your_day.tick(ctx, TickResult())
        idle.append(time.perf_counter() - t0)
    with db.session() as s:
        queued = s.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.kind == your_day.KIND))
    members = n + 1  # plus the study file's coordinator (nothing to do: no DM)
    assert queued == n == len(first.sent), (queued, len(first.sent))
    label = db_label(url)
    print(table([
        ("your-day tick: build + claim + queue", f"{members:,}", f"{due_tick:.2f}",
         f"{members / due_tick:,.0f}", label),
        ("next tick (all sent; median of 5)", f"{members:,}", f"{sorted(idle)[2]:.3f}", "-", label),
    ], ("what", "coordinators", "seconds", "per second", "database")))
    print(f"DMs queued {queued:,}, sent twice 0")
    db.dispose()


if __name__ == "__main__":
    main()
