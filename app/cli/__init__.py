"""prescreen-bot command line. Exit codes: 0 ok, 1 failure, 2 invalid input or usage.

One module per command group; each adds its sub-commands with `add_cli`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from app.cli import (
    audit,
    digests,
    export,
    graph,
    jobs,
    keys,
    kpis,
    leads,
    members,
    outbox,
    processes,
    ringcentral,
    sandbox,
    studies,
)
from app.cli.common import EXIT_FAIL, EXIT_INVALID
from bot.config import SettingsError, load_settings
from bot.logging_setup import setup_logging
from integrations.graph import GraphConfigError, client_from_settings

GROUPS = (processes, studies, jobs, keys, outbox, export, sandbox, graph, leads, digests, members,
          audit, ringcentral, kpis)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prescreen-bot",
        description="Slack app for clinical-trial pre-screen coordinators.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        group.add_cli(sub)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        overrides = {k: v for k, v in (("port", getattr(args, "port", None)),
                                        ("host", getattr(args, "host", None))) if v is not None}
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"prescreen-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if settings.graph_configured:
        try:
            client_from_settings(settings)  # no network call: checks the credentials' shape
        except GraphConfigError as exc:
            print(f"prescreen-bot: configuration error: {exc}", file=sys.stderr)
            return EXIT_INVALID
    setup_logging(settings.log_level, settings.log_format)
    try:
        return int(args.func(args, settings, out))
    except SettingsError as exc:  # e.g. a start that would fall back to the sandbox on real settings
        print(f"prescreen-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_FAIL
