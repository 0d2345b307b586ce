"""`prescreen-bot outbox list [--pending] | retry ID`: Slack messages waiting or failed."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TextIO

from app.cli.common import EXIT_INVALID, EXIT_OK, open_db
from bot.config import Settings
from storage.repositories import outbox as repo


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ob = sub.add_parser("outbox", help="Slack messages waiting or failed")
    obsub = ob.add_subparsers(dest="outbox_cmd", metavar="ACTION")
    obsub.required = True
    oblist = obsub.add_parser("list", help="failed messages (or --pending)")
    oblist.add_argument("--pending", action="store_true", help="list waiting messages instead")
    oblist.set_defaults(func=cmd_outbox_list)
    obretry = obsub.add_parser("retry", help="queue a failed message again")
    obretry.add_argument("id", type=int)
    obretry.set_defaults(func=cmd_outbox_retry)


def cmd_outbox_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db, db.session() as session:
        rows = repo.pending(session) if args.pending else repo.failed(session)
        if not rows:
            print("Nothing " + ("waiting." if args.pending else "failed."), file=out)
        for r in rows:
            print(f"{r.id:>6}  {r.status:<8} {r.kind:<16} to {r.channel:<12} tries {r.attempts}  "
                  f"{r.last_error or ''}", file=out)
    return EXIT_OK


def cmd_outbox_retry(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db, db.session() as session:
        ok = repo.requeue(session, args.id, dt.datetime.now(dt.UTC))
    if not ok:
        print(f"prescreen-bot: no failed message {args.id}; see `prescreen-bot outbox list`",
              file=sys.stderr)
        return EXIT_INVALID
    print(f"message {args.id} queued again; the worker sends it within seconds", file=out)
    return EXIT_OK
