"""`prescreen-bot leads import FILE.csv --study MDD --source web-ads [--skip-invalid] [--dry-run]
[--report OUT.csv]`: the report names line numbers and reasons, never patient identity."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from app.cli.common import cli_context, cli_keys, open_db
from bot.config import Settings
from bot.leads.intake import LeadFileError, Problem, import_leads, write_report

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2
SHOWN = 50


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    leads = sub.add_parser("leads", help="lead intake")
    lsub = leads.add_subparsers(dest="leads_cmd", metavar="ACTION")
    lsub.required = True
    imp = lsub.add_parser("import", help="import leads from a CSV file (status needs_call)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--study", required=True, help="study key, like MDD")
    imp.add_argument("--source", required=True,
                     help="lead source: one of the study's lead_sources (any slug if it has none)")
    imp.add_argument("--skip-invalid", action="store_true",
                     help="import the good rows even if some are rejected")
    imp.add_argument("--dry-run", action="store_true", help="check and count; write nothing")
    imp.add_argument("--report", type=Path, metavar="OUT.csv",
                     help="write every rejected and duplicate line to this CSV")
    imp.add_argument("--encoding", choices=("utf-8", "cp1252"), default="utf-8",
                     help="the file's text encoding: utf-8 (default; Excel's CSV UTF-8) or "
                     "cp1252 (Excel's plain CSV on Windows)")
    imp.set_defaults(func=cmd_leads_import)


def cmd_leads_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    keys = cli_keys(settings)
    if not keys:
        print("prescreen-bot: PRESCREEN_ENCRYPTION_KEYS is not set", file=sys.stderr)
        return EXIT_INVALID
    everything: list[Problem] = []
    with open_db(settings) as db:
        ctx = cli_context(settings, db, keys)
        try:
            result = import_leads(ctx, args.file, study_key=args.study, source=args.source,
                                  skip_invalid=args.skip_invalid, dry_run=args.dry_run,
                                  on_problem=everything.append if args.report else None,
                                  encoding=args.encoding)
        except LeadFileError as exc:
            print(f"prescreen-bot: {args.file.name} not imported; nothing was changed: {exc.message}",
                  file=sys.stderr)
            return EXIT_INVALID
        except SQLAlchemyError as exc:
            print(f"prescreen-bot: {args.file.name} not imported; nothing was changed: the database "
                  f"refused it ({type(exc).__name__}). Try again; if it says locked, wait for the "
                  "other import to finish.", file=sys.stderr)
            return EXIT_FAIL
    if args.report:
        everything.sort(key=lambda p: p.line)
        with args.report.open("w", encoding="utf-8", newline="") as fh:
            write_report(everything, fh)
    invalid = result.rejected and not args.skip_invalid
    head = f"{args.file.name} → {result.study_key} (source {result.source}): "
    if not result.rows:
        print(f"{head}no leads in the file, only the header row; nothing was imported.", file=out)
        return EXIT_OK
    if invalid:
        print(f"{head}rejected {result.rejected} of {result.rows} rows; nothing was imported. "
              "Fix them, or run again with --skip-invalid to import the other rows.", file=out)
    else:
        print(head + result.summary(), file=out)
    problems = sorted(result.problems, key=lambda p: p.line)
    for p in problems[:SHOWN]:
        print(f"  {p}", file=out)
    hidden = result.rejected + result.duplicates - min(len(problems), SHOWN)
    if hidden > 0:
        more = f" (all of them in {args.report.name})" if args.report else \
            " (--report FILE.csv lists all)"
        print(f"  … and {hidden} more{more}", file=out)
    if result.timezone_assumed:
        print(f"  time zone assumed (no state or ZIP): {result.timezone_assumed} leads", file=out)
    if args.dry_run and not invalid:
        print("dry run: nothing was written", file=out)
    elif result.written and result.created:
        print(f"  new: {result.first_ref} … {result.last_ref}, status needs_call, unassigned",
              file=out)
    print(f"  {result.rows} rows in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)",
          file=out)
    return EXIT_INVALID if invalid else EXIT_OK
