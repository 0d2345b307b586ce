"""`prescreen-bot sandbox reset`: restore the demo data (through the one sandbox seam)."""

from __future__ import annotations

import argparse
from typing import TextIO

from app.cli.common import EXIT_OK
from app.runtime import sandbox_package
from bot.config import Settings


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sandbox = sub.add_parser("sandbox", help="sandbox data")
    sbsub = sandbox.add_subparsers(dest="sandbox_cmd", metavar="ACTION")
    sbsub.required = True
    sbsub.add_parser("reset", help="restore the demo data").set_defaults(func=cmd_sandbox_reset)


def cmd_sandbox_reset(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    sandbox_package().reset_sandbox(settings)  # refuses (SettingsError) any database but the sandbox's own
    print("sandbox data restored; restart `prescreen-bot run` if it is running", file=out)
    return EXIT_OK
