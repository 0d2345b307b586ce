"""`prescreen-bot studies import FILE.yaml | list`: studies, sites, questions and members."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from app.cli.common import EXIT_INVALID, EXIT_OK, open_db
from bot.config import Settings
from bot.operator import operator_actor
from bot.studies.importer import ImportErrors, import_studies
from storage.repositories import studies as repo


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    studies = sub.add_parser("studies", help="import or list studies and members")
    ssub = studies.add_subparsers(dest="studies_cmd", metavar="ACTION")
    ssub.required = True
    imp = ssub.add_parser("import", help="import studies and members from a YAML file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--prune", action="store_true",
                     help="the file is the whole list: remove members and roles it does not name")
    imp.add_argument("--dry-run", action="store_true",
                     help="check the file and list what would be removed; change nothing")
    imp.set_defaults(func=cmd_studies_import)
    lst = ssub.add_parser("list", help="list studies, sites, questions and members")
    lst.set_defaults(func=cmd_studies_list)


def cmd_studies_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db:
        try:
            report = import_studies(db, args.file, actor=operator_actor(), prune=args.prune,
                                    dry_run=args.dry_run)
        except ImportErrors as exc:
            print(f"prescreen-bot: {args.file} not imported; nothing was changed:", file=sys.stderr)
            for line in exc.errors:
                print(f"  - {line}", file=sys.stderr)
            return EXIT_INVALID
    print(report.summary(), file=out)
    return EXIT_OK


def cmd_studies_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db, db.session() as session:
        studies = repo.list_studies(session)
        if not studies:
            print("No studies yet. Import some: prescreen-bot studies import FILE.yaml",
                  file=out)
            return EXIT_OK
        for s in studies:
            approval = "approval required" if s.approval_required else "no approval step"
            print(f"{s.key}  {s.title}  ({s.sponsor}; {s.timezone}; channel {s.channel_id}; "
                  f"{approval}; max {s.max_attempts} attempts; digest {s.digest_time})",
                  file=out)
            sites = ", ".join(f"{x.key} {x.name}" for x in s.sites if x.active) or "none"
            print(f"    sites: {sites}", file=out)
            qs = ", ".join(f"{q.qid} ({q.kind})" for q in s.questions) or "none"
            print(f"    questions: {qs}", file=out)
            roles: dict[str, list[str]] = {}
            for role in ("coordinator", "approver", "stakeholder", "admin"):
                roles[role] = [m.slack_user_id for m in repo.members_with_role(session, s.id, role)]
            print("    members: " + "; ".join(f"{r}: {', '.join(u) or '-'}"
                                           for r, u in roles.items()), file=out)
    return EXIT_OK
