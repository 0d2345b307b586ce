"""Benchmark the Outlook calendar cache: first (full) sync and an incremental delta sync.

Generates its own data in the local Graph stand-in (default 50 mailboxes × 14 days), then prints
Graph calls and wall time for both syncs.

    python bench/graph_sync.py [--mailboxes 50] [--days 14] [--database-url sqlite:///…]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete

from integrations.graph.auth import StaticTokenCredential
from integrations.graph.client import GraphClient
from integrations.graph.sync import SyncReport, sync_mailboxes
from sandbox.graph_standin import SANDBOX_TOKEN, GraphStandin
from storage.db import Database
from storage.models import Base, CalendarEvent, GraphSyncState

ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")


@dataclass
class Deps:
    db: Database
    graph: GraphClient | None


def generate(
    standin: GraphStandin, mailboxes: int, days: int, now: dt.datetime, rng: random.Random
) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(mailboxes):
        address = f"bench-{i:03d}@example.org"
        tz_name = ZONES[i % len(ZONES)]
        out[address] = tz_name
        standin.add_mailbox(address, tz_name)
        tz = ZoneInfo(tz_name)
        today = now.astimezone(tz).date()
        for d in range(days):
            day = today + dt.timedelta(days=d)
            if day.weekday() >= 5:
                continue
            standin.add_event(
                address,
                "Stand-up",
                dt.datetime.combine(day, dt.time(9, 30), tz),
                dt.datetime.combine(day, dt.time(9, 45), tz),
                type="occurrence",
                join_url="https://teams.microsoft.com/l/meetup-join/bench",
            )
            for _ in range(rng.randint(2, 6)):
                start = dt.datetime.combine(day, dt.time(rng.randint(8, 16), rng.choice((0, 30))), tz)
                standin.add_event(
                    address,
                    "Meeting",
                    start,
                    start + dt.timedelta(minutes=rng.choice((30, 60))),
                    sensitivity=rng.choice(("normal",) * 9 + ("private",)),
                )
            if rng.random() < 0.05:
                standin.add_all_day(address, "Out of office", day)
    return out


def mutate(standin: GraphStandin, rng: random.Random, share: float) -> int:
    changed = 0
    for mb in standin.mailboxes.values():
        ids = list(mb.events)
        for event_id in rng.sample(ids, max(1, int(len(ids) * share))):
            if rng.random() < 0.5:
                standin.delete_event(mb.address, event_id)
            else:
                standin.update_event(mb.address, event_id, subject="Moved meeting")
            changed += 1
    return changed


def run(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--mailboxes", type=int, default=50)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument(
        "--change-share", type=float, default=0.05, help="share of events changed before the delta"
    )
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    rng = random.Random(args.seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    db = Database(url)
    Base.metadata.create_all(db.engine)
    standin = GraphStandin(static_tokens=[SANDBOX_TOKEN]).start()
    client = GraphClient(
        StaticTokenCredential(SANDBOX_TOKEN), base_url=standin.graph_url, page_size=args.page_size
    )
    deps = Deps(db, client)
    try:
        mailboxes = generate(standin, args.mailboxes, args.days, now, rng)
        total = sum(len(m.events) for m in standin.mailboxes.values())
        rows: list[tuple[str, SyncReport, float, int]] = []
        for label, at in (("first sync (full)", now), ("incremental (delta)", now + dt.timedelta(minutes=5))):
            if label.startswith("incremental"):
                changed = mutate(standin, rng, args.change_share)
                label = f"{label}, {changed} changed"
            inner_before = standin.calls["batch:delta"] + standin.calls["delta"]
            started = time.perf_counter()
            report = sync_mailboxes(deps, mailboxes, at, days=args.days)
            elapsed = time.perf_counter() - started
            inner = standin.calls["batch:delta"] + standin.calls["delta"] - inner_before
            rows.append((label, report, elapsed, inner))
        print(
            f"{args.mailboxes} mailboxes × {args.days} days, {total} events, page size {args.page_size}, "
            f"database {db.engine.dialect.name}"
        )
        print(
            f"{'phase':<36} {'HTTP calls':>10} {'delta reqs':>10} {'written':>8} {'removed':>8} {'wall s':>8}"
        )
        for label, report, elapsed, inner in rows:
            print(
                f"{label:<36} {report.graph_calls:>10} {inner:>10} {report.upserted:>8} {report.deleted:>8} "
                f"{elapsed:>8.2f}"
            )
        failed = sum(len(r.failed) for _, r, _, _ in rows)
        if failed:
            print(f"{failed} mailbox syncs failed", file=sys.stderr)
            return 1
        return 0
    finally:
        with db.session() as session:
            session.execute(delete(CalendarEvent).where(CalendarEvent.mailbox.like("bench-%@example.org")))
            session.execute(delete(GraphSyncState).where(GraphSyncState.mailbox.like("bench-%@example.org")))
        standin.stop()
        client.close()
        db.dispose()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(run())
