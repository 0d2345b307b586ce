"""`prescreen-bot members list | deactivate SLACK_ID | reactivate SLACK_ID`: who has access,
and taking it away at once. Every change is audited with the operating-system user and host."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from app.cli.common import open_db
from bot.config import Settings
from bot.members.service import UnknownMember, deactivate, list_members, reactivate
from bot.operator import operator_actor

EXIT_OK, EXIT_INVALID = 0, 2
SHOWN = 10


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    members = sub.add_parser("members", help="list members; revoke or restore access")
    msub = members.add_subparsers(dest="members_cmd", metavar="ACTION")
    msub.required = True
    msub.add_parser("list", help="members, their roles, and who is deactivated"
                    ).set_defaults(func=cmd_members_list)
    deact = msub.add_parser("deactivate", help="remove every role and all access at once")
    deact.add_argument("slack_id", metavar="SLACK_ID")
    deact.add_argument("--reason", default="deactivated by an admin",
                       help="recorded in the audit trail (no patient identity)")
    deact.set_defaults(func=cmd_members_deactivate)
    react = msub.add_parser("reactivate", help="allow a deactivated member again (no roles "
                            "until the next studies import)")
    react.add_argument("slack_id", metavar="SLACK_ID")
    react.add_argument("--reason", default="reactivated by an admin")
    react.set_defaults(func=cmd_members_reactivate)


def _refs(refs: list[str]) -> str:
    more = f" and {len(refs) - SHOWN} more" if len(refs) > SHOWN else ""
    return ", ".join(refs[:SHOWN]) + more


def cmd_members_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db:
        rows = list_members(db)
    if not rows:
        print("No members yet. Import some: prescreen-bot studies import FILE.yaml", file=out)
    for r in rows:
        roles = ", ".join(f"{k} {v}" for k, v in r.roles.items()) or "no roles"
        state = "active" if r.active else f"DEACTIVATED {r.deactivated or ''}".rstrip()
        print(f"{r.slack_id:<12} {state:<12} {roles}  {r.email or ''}".rstrip(), file=out)
    return EXIT_OK


def cmd_members_deactivate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db:
        try:
            result = deactivate(db, args.slack_id, actor=operator_actor(), reason=args.reason)
        except UnknownMember as exc:
            print(f"prescreen-bot: {exc.message}", file=sys.stderr)
            return EXIT_INVALID
    if result.already:
        print(f"{result.slack_id} was already deactivated; nothing changed.", file=out)
    else:
        roles = ", ".join(f"{k} {v}" for k, v in result.roles.items()) or "none"
        print(f"{result.slack_id} deactivated: every action is refused from now on. "
              f"Roles removed: {roles}.", file=out)
    if result.open_leads or result.open_callbacks:
        print(f"They still own {len(result.open_leads)} open leads ({_refs(result.open_leads)}) "
              f"and {len(result.open_callbacks)} open callbacks ({_refs(result.open_callbacks)}). "
              "Give them to a coordinator: /prescreen assign REF @someone", file=out)
    return EXIT_OK


def cmd_members_reactivate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db:
        try:
            changed = reactivate(db, args.slack_id, actor=operator_actor(), reason=args.reason)
        except UnknownMember as exc:
            print(f"prescreen-bot: {exc.message}", file=sys.stderr)
            return EXIT_INVALID
    sid = args.slack_id.strip().upper()
    if not changed:
        print(f"{sid} is active; nothing changed.", file=out)
    else:
        print(f"{sid} reactivated with no roles. Give roles with "
              "`prescreen-bot studies import FILE.yaml`.", file=out)
    return EXIT_OK
