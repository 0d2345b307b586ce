"""`prescreen-bot jobs list | run NAME`: the scheduled jobs, or one of them once, now."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

from app.cli.common import EXIT_FAIL, EXIT_INVALID, EXIT_OK
from app.runtime import build_runtime
from app.scheduler import find_job, job_specs
from bot.config import Settings


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    jobs = sub.add_parser("jobs", help="list scheduled jobs or run one once")
    jsub = jobs.add_subparsers(dest="jobs_cmd", metavar="ACTION")
    jsub.required = True
    jsub.add_parser("list", help="list named jobs").set_defaults(func=cmd_jobs_list)
    jrun = jsub.add_parser("run", help="run one job once, now")
    jrun.add_argument("name")
    jrun.set_defaults(func=cmd_jobs_run)


def cmd_jobs_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    for spec in job_specs():
        print(f"{spec.name:<22} every {_every(spec.every_seconds):<8} {spec.description}", file=out)
    return EXIT_OK


def _every(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


def cmd_jobs_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    spec = find_job(args.name)
    if spec is None:
        names = ", ".join(j.name for j in job_specs())
        print(f"prescreen-bot: no job named {args.name!r}; jobs: {names}", file=sys.stderr)
        return EXIT_INVALID
    rt = build_runtime(settings)
    try:
        result = spec.func(rt.ctx)
    except Exception as exc:
        logging.getLogger("prescreen.cli").exception("job %s failed", spec.name)
        print(f"prescreen-bot: job {spec.name} failed: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        rt.close()
    print(f"{spec.name}: {result or 'nothing to do'}", file=out)
    return EXIT_OK
