"""`prescreen-bot run | serve | worker | migrate`: start the processes, upgrade the schema."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TextIO

from app.cli.common import EXIT_FAIL, EXIT_OK, open_db, require_schema
from app.runtime import build_runtime
from app.scheduler import run_worker
from app.server import serve, serve_metrics_port
from bot.audit_trail.roles import check_running_role, migrate_report
from bot.config import Settings
from integrations import metrics
from storage import migrate


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="web + worker in one process (sandbox without Slack tokens)")
    run.add_argument("--port", type=int, help="listen port (default PORT or 3000)")
    run.add_argument("--host", help="listen address (default HOST or 127.0.0.1)")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="web process: POST /slack/events, GET /healthz")
    serve.add_argument("--port", type=int)
    serve.add_argument("--host")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="scheduler process: reminders, digests, outbox")
    worker.set_defaults(func=cmd_worker)

    mig = sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    mig.set_defaults(func=cmd_migrate)


def db_role_refused(settings: Settings) -> bool:
    """Warn (one line) when the app's database role can rewrite the audit trail; True when
    PRESCREEN_REQUIRE_SEPARATE_DB_ROLE says to refuse to start then."""
    with open_db(settings, upgrade=False) as db:
        check = check_running_role(settings, db)
    if check.refuse:
        print(f"prescreen-bot: {check.message}", file=sys.stderr)
    elif check.message:
        logging.getLogger("prescreen.db").warning("%s", check.message)
    return check.refuse


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    settings.check_sandbox()
    migrate.upgrade(settings.database_url)
    if db_role_refused(settings):
        return EXIT_FAIL
    serve(settings, with_worker=True)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    settings.check_sandbox()
    if settings.sandbox:
        migrate.upgrade(settings.database_url)
    elif problem := require_schema(settings):
        print(f"prescreen-bot: {problem}", file=sys.stderr)
        return EXIT_FAIL
    if db_role_refused(settings):
        return EXIT_FAIL
    serve(settings, with_worker=False)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    settings.check_sandbox()
    if not settings.sandbox and (problem := require_schema(settings)):
        print(f"prescreen-bot: {problem}", file=sys.stderr)
        return EXIT_FAIL
    if db_role_refused(settings):
        return EXIT_FAIL
    rt = build_runtime(settings, migrate_db=settings.sandbox)
    if settings.metrics_port and not os.environ.get(metrics.MULTIPROC_ENV):
        # the worker's own series (sends, jobs, lateness) on its loopback port; with
        # PROMETHEUS_MULTIPROC_DIR shared with `serve` they appear on the web's /metrics instead
        serve_metrics_port(settings)
    try:
        run_worker(rt.ctx)
    finally:
        rt.close()
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    try:
        migrate.upgrade(settings.database_url)
    except Exception as exc:
        print(f"prescreen-bot: migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"database is at schema {migrate.head_revision(settings.database_url)}", file=out)
    with open_db(settings, upgrade=False) as db:
        for line in migrate_report(db):
            print(line, file=out)
    return EXIT_OK
