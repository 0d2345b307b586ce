"""`prescreen-bot export KIND --study KEY --from DAY --to DAY --out FILE.csv`: one study's CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from app.cli.common import EXIT_INVALID, EXIT_OK, cli_context, cli_keys, open_db
from bot.config import Settings
from bot.errors import DomainError
from bot.export import export_csv, parse_dates, phi_reason


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    exp = sub.add_parser("export", help="CSV of calls, referrals, callbacks or audit for one study")
    exp.add_argument("kind", choices=("calls", "referrals", "callbacks", "audit"))
    exp.add_argument("--study", required=True, help="study key, e.g. ALZ")
    exp.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD",
                     help="first study-local day")
    exp.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD",
                     help="last study-local day (inclusive)")
    exp.add_argument("--out", required=True, type=Path, metavar="FILE.csv")
    exp.add_argument("--include-phi", action="store_true",
                     help="add name/phone/dob/notes columns (needs --reason; audited)")
    exp.add_argument("--reason", help="why patient identity is exported (required with "
                     "--include-phi; kept in the audit trail, no patient names)")
    exp.add_argument("--force", action="store_true", help="replace FILE.csv if it exists")
    exp.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    try:
        date_from, date_to = parse_dates(args.date_from, args.date_to)
        reason = phi_reason(args.include_phi, args.reason)
    except DomainError as exc:
        print(f"prescreen-bot: {exc.message}", file=sys.stderr)
        return EXIT_INVALID
    if not args.out.parent.is_dir():
        print(f"prescreen-bot: folder {args.out.parent} does not exist", file=sys.stderr)
        return EXIT_INVALID
    keys = cli_keys(settings)
    if args.include_phi and not keys:
        print("prescreen-bot: --include-phi needs PRESCREEN_ENCRYPTION_KEYS", file=sys.stderr)
        return EXIT_INVALID
    with open_db(settings) as db:
        ctx = cli_context(settings, db, keys)  # without --include-phi nothing is decrypted
        try:
            result = export_csv(ctx, args.kind, args.study, date_from, date_to, args.out,
                                include_phi=args.include_phi, overwrite=args.force,
                                reason=reason)
        except DomainError as exc:
            print(f"prescreen-bot: {exc.message}", file=sys.stderr)
            return EXIT_INVALID
    phi = " with patient identity (audited)" if result.include_phi else ""
    print(f"{result.rows} {result.kind} rows of {result.study_key} for {result.period.label} "
          f"written to {result.path}{phi}", file=out)
    return EXIT_OK
