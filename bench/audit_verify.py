"""`prescreen-bot audit verify` at scale: append N chained audit events through the app's own
write path (in units of work of --batch events), then walk and check the whole chain.

Usage: python -m bench.audit_verify [--database-url URL] [--events 100000] [--batch 1000]
       [--runs 3]"""

from __future__ import annotations

import argparse
import io
import os
import resource
import time

from bench._harness import db_label, fresh_database, table
from storage import audit, migrate
from storage.db import Database


def fill(db: Database, events: int, batch: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, events, batch):
        with db.session() as s:
            audit.record_many(s, [
                {"actor": f"U0BCOORD{i % 8}", "action": "phi.viewed", "entity": "candidate",
                 "entity_id": f"BEN-{i:06d}", "after": {"via": "status", "attempt": i % 5}}
                for i in range(start, min(events, start + batch))])
    return time.perf_counter() - t0


def verify_cli(url: str) -> tuple[float, str]:
    from app import cli

    os.environ.update(DATABASE_URL=url, SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET="s" * 32,
                      PRESCREEN_ENCRYPTION_KEYS="cHJlc2NyZWVuLWJvdC10ZXN0LWtleS0wMDAwMDAwMDA=")
    out = io.StringIO()
    t0 = time.perf_counter()
    code = cli.main(["audit", "verify"], out=out)
    elapsed = time.perf_counter() - t0
    assert code == 0, out.getvalue()
    return elapsed, out.getvalue().strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    with fresh_database(args.database_url) as url:
        migrate.upgrade(url)
        db = Database(url)
        try:
            write = fill(db, args.events, args.batch)
        finally:
            db.dispose()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        times, line = [], ""
        for _ in range(args.runs):
            elapsed, line = verify_cli(url)
            times.append(elapsed)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best = min(times)
    print(f"audit trail of {args.events:,} events on {db_label(url)}: {line}\n")
    print(table([
        ("append (record_many, chained at commit)", f"{write:.2f} s",
         f"{args.events / write:,.0f} events/s"),
        (f"audit verify (best of {args.runs})", f"{best:.2f} s", f"{args.events / best:,.0f} events/s"),
        ("audit verify (worst)", f"{max(times):.2f} s", f"{args.events / max(times):,.0f} events/s"),
        ("peak RSS growth during verify", f"{(rss1 - rss0) / 1024:.0f} MiB", ""),
    ], ("step", "time", "rate")))


if __name__ == "__main__":
    main()
