"""RingCentral call-log sync against a large study: the first sync (FSync per extension) of
10,000 call records, then an incremental sync (ISync), matched against 100,000 candidates through
the phone lookup index. Records go through the real client and the RingCentral stand-in over
HTTP; half of them are to candidates (no answer, busy, voicemail, connected), half to other
numbers. Targets: first sync under 5 s, incremental under 0.5 s.

Usage: python -m bench.ringcentral_sync [--candidates 100000] [--records 10000]
       [--extensions 40] [--database-url URL] (or DATABASE_URL=postgresql+psycopg://…)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from bench._harness import bench_context, bench_database, db_label, fresh_database, table
from bot.clock import OffsetClock
from bot.telephony.connection import CLIENT
from bot.telephony.sync import sync_all
from integrations.ringcentral import RingCentralClient
from sandbox.ringcentral_standin import RingCentralStandin
from storage.models import Candidate, PrescreenCall, RcCallRecord, Study
from storage.repositories import candidates as cand_repo

NOW = dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.UTC)
RESULTS = [("No Answer", 0), ("Busy", 0), ("Voicemail", 35), ("Call connected", 300)]
BATCH = 5000


def studies_yaml(extensions: int) -> str:
    members = "\n".join(
        f"  - {{slack_id: U0BC{n:05d}, email: coord{n}@example.org, timezone: America/New_York, "
        f"roles: {{BEN: coordinator}}}}" for n in range(extensions))
    return f"""
studies:
  - {{key: BEN, title: Benchmark study, channel: C0BENCH01, timezone: America/New_York}}
members:
{members}
"""


AREA = ["617", "212", "305", "312", "713", "303", "602", "415", "206", "404", "215", "612"]


def phone(i: int) -> str:
    """A valid, distinct US number per candidate."""
    rest = i // len(AREA)
    return f"+1{AREA[i % len(AREA)]}{234 + rest // 10000:03d}{rest % 10000:04d}"


def seed(ctx: Any, n: int) -> None:
    name = ctx.cipher.encrypt("Bench Candidate")  # never decrypted by the sync
    with ctx.db.session() as s:
        study = s.scalars(select(Study).where(Study.key == "BEN")).one()
        rows = []
        for i in range(n):
            rows.append({"study_id": study.id, "seq": i + 1,
                         "ref_code": cand_repo.ref_code("BEN", i + 1), "name_enc": name,
                         "phone_enc": name, "phone_index": ctx.cipher.index(phone(i)),
                         "region": "MA", "timezone": "America/New_York",
                         "consent_to_contact": True, "do_not_call": False,
                         "status": "needs_call", "attempts": 0, "source": "bench",
                         "created_at": NOW - dt.timedelta(days=3),
                         "updated_at": NOW - dt.timedelta(days=3)})
            if len(rows) == BATCH:
                s.execute(insert(Candidate), rows)
                rows = []
        if rows:
            s.execute(insert(Candidate), rows)


def calls(rc: RingCentralStandin, exts: list[str], n: int, candidates: int, rnd: random.Random,
          start: dt.datetime) -> None:
    for i in range(n):
        to = phone(rnd.randrange(candidates)) if i % 2 == 0 else f"+1202{rnd.randrange(2 * 10**6, 10**7):07d}"
        result, duration = RESULTS[rnd.randrange(len(RESULTS))]
        rc.add_call(exts[i % len(exts)], to, result, duration,
                    start=start + dt.timedelta(seconds=i))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=100_000)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--extensions", type=int, default=40)
    ap.add_argument("--incremental", type=int, default=40,
                    help="new records before the ISync (a busy 2-minute tick: one per coordinator)")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = ap.parse_args()
    with fresh_database(args.database_url) as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    rnd = random.Random(19)
    db = bench_database(url, studies_yaml(args.extensions))
    ctx = bench_context(url, db, Fernet.generate_key().decode(), clock=OffsetClock(start=NOW))
    t0 = time.perf_counter()
    seed(ctx, args.candidates)
    rc = RingCentralStandin(clock=lambda: NOW).start()
    exts = [rc.add_extension(f"coord{n}@example.org", f"+1617555{n:04d}").id
            for n in range(args.extensions)]
    calls(rc, exts, args.records, args.candidates, rnd, NOW - dt.timedelta(hours=10))
    print(f"seeded {args.candidates:,} candidates and {args.records:,} call records in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    ctx.extras[CLIENT] = RingCentralClient(server_url=rc.url, client_id=rc.client_id,
                                           client_secret=rc.client_secret, jwt=rc.issue_jwt())
    try:
        t = time.perf_counter()
        first = sync_all(ctx)
        first_s = time.perf_counter() - t
        calls(rc, exts, args.incremental, args.candidates, rnd, NOW - dt.timedelta(minutes=30))
        t = time.perf_counter()
        second = sync_all(ctx)
        second_s = time.perf_counter() - t
        t = time.perf_counter()
        idle = sync_all(ctx)
        idle_s = time.perf_counter() - t
        if first.errors or second.errors or idle.errors:
            raise SystemExit(f"sync failed: {first.errors or second.errors or idle.errors}")
        with db.session() as s:
            attempts = s.scalar(select(func.count()).select_from(PrescreenCall)) or 0
            records = s.scalar(select(func.count()).select_from(RcCallRecord)) or 0
        label = db_label(url)
        print(table([
            ("first sync (FSync)", f"{first.records:,}", f"{first.attempts:,}",
             f"{first_s:.2f}", "< 5", label),
            ("incremental (ISync)", f"{second.records:,}", f"{second.attempts:,}",
             f"{second_s:.3f}", "< 0.5", label),
            ("nothing new (ISync)", "0", "0", f"{idle_s:.3f}", "", label),
        ], ("sync", "new records", "attempts", "seconds", "target", "database")))
        print(f"{args.candidates:,} candidates, {args.extensions} extensions; {records:,} call "
              f"records kept (to candidates), {attempts:,} attempts; half the records are to "
              "other numbers and leave no trace")
    finally:
        rc.stop()


if __name__ == "__main__":
    main()
