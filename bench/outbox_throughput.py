"""Outbox delivery: N queued announcements over C channels, delivered by D dispatchers
against the Slack stand-in with Slack's pacing (≈1 message/s/channel). Prints messages per
second and how many were sent twice (must be 0).

Usage: python -m bench.outbox_throughput [--messages 1000] [--channels 10] [--dispatchers 2]
       [--interval 1.0] [--database-url URL]"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import threading
import time

from slack_sdk import WebClient

from bench._harness import db_label, fresh_database, table
from integrations.slack_outbox import OutboxDispatcher
from sandbox.slack_standin import SlackStandin
from storage import migrate
from storage.db import Database
from storage.models import Base
from storage.repositories import outbox as repo


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--dispatchers", type=int, default=2)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between messages per channel")
    ap.add_argument("--database-url")
    args = ap.parse_args()
    with fresh_database(args.database_url) as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    migrate.upgrade(url)
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(Base.metadata.tables["outbox_messages"].delete())
    standin = SlackStandin(bot_token="xoxb-bench").start()
    channels = [f"C0BENCH{i:03d}" for i in range(args.channels)]
    for ch in channels:
        standin.add_channel(ch, ch.lower())
    with db.session() as s:
        for i in range(args.messages):
            repo.enqueue(s, key=f"bench:{i}", kind="bench", channel=channels[i % len(channels)],
                         payload={"text": f"announcement {i}"}, now=now())

    stop = time.monotonic() + args.messages / len(channels) * args.interval * 3 + 60
    def dispatch() -> None:
        client = WebClient(token="xoxb-bench", base_url=standin.url)
        d = OutboxDispatcher(db, client, now=now, channel_interval=args.interval)
        d.drain(max_seconds=stop - time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=dispatch) for _ in range(args.dispatchers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    texts = collections.Counter(m["text"] for m in standin.messages())
    delivered = len(texts)
    twice = sum(n - 1 for n in texts.values() if n > 1)
    gaps = []
    for ch in channels:
        ts = [float(m["ts"]) for m in standin.messages(ch)]
        gaps += [b - a for a, b in itertools.pairwise(ts)]
    min_gap = min(gaps) if gaps else float("nan")
    standin.stop()
    db.dispose()
    print(table([(
        f"{args.messages} announcements, {args.channels} channels, {args.dispatchers} dispatchers",
        f"{delivered}/{args.messages}", f"{delivered / elapsed:.1f} msg/s", f"{elapsed:.1f} s",
        f"{min_gap:.2f} s", str(twice), db_label(url),
    )], ("what", "delivered", "throughput", "wall time", "min gap/channel", "sent twice", "database")))


if __name__ == "__main__":
    main()
