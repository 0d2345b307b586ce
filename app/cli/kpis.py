"""`prescreen-bot kpis rebuild [--study KEY]`: recompute the KPI rollups from the raw rows."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from app.cli.common import EXIT_INVALID, EXIT_OK, cli_context, open_db
from bot import kpi_jobs
from bot.config import Settings
from bot.errors import DomainError


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    kpis = sub.add_parser("kpis", help="KPI rollups")
    ksub = kpis.add_subparsers(dest="kpis_cmd", metavar="ACTION")
    ksub.required = True
    rebuild = ksub.add_parser("rebuild", help="recompute the daily KPI rollups from the raw rows")
    rebuild.add_argument("--study", help="one study key (default: every study)")
    rebuild.set_defaults(func=cmd_kpis_rebuild)


def cmd_kpis_rebuild(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with open_db(settings) as db:
        ctx = cli_context(settings, db, [])  # figures only: nothing is decrypted
        t0 = time.perf_counter()
        try:
            done = kpi_jobs.rebuild(ctx, args.study)
        except DomainError as exc:
            print(f"prescreen-bot: {exc.message}", file=sys.stderr)
            return EXIT_INVALID
    for key, days in done:
        print(f"{key}: {days} day(s) rebuilt", file=out)
    print(f"done in {time.perf_counter() - t0:.1f} s", file=out)
    return EXIT_OK
