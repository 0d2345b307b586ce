"""prescreen-bot command line. Exit codes: 0 ok, 1 failure, 2 invalid input or usage."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.config import Settings, SettingsError, load_settings
from bot.logging_setup import setup_logging

if TYPE_CHECKING:
    from bot.context import AppContext
    from storage.db import Database

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2

Command = Callable[[argparse.Namespace, Settings, TextIO], int]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prescreen-bot",
        description="Slack app for clinical-trial pre-screen coordinators.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

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

    jobs = sub.add_parser("jobs", help="list scheduled jobs or run one once")
    jsub = jobs.add_subparsers(dest="jobs_cmd", metavar="ACTION")
    jsub.required = True
    jsub.add_parser("list", help="list named jobs").set_defaults(func=cmd_jobs_list)
    jrun = jsub.add_parser("run", help="run one job once, now")
    jrun.add_argument("name")
    jrun.set_defaults(func=cmd_jobs_run)

    keys = sub.add_parser("keys", help="encryption keys for patient data")
    ksub = keys.add_subparsers(dest="keys_cmd", metavar="ACTION")
    ksub.required = True
    ksub.add_parser("generate", help="print a new key").set_defaults(func=cmd_keys_generate)
    ksub.add_parser("rotate", help="re-encrypt patient data with the newest key (then drop the old)"
                    ).set_defaults(func=cmd_keys_rotate)

    ob = sub.add_parser("outbox", help="Slack messages waiting or failed")
    obsub = ob.add_subparsers(dest="outbox_cmd", metavar="ACTION")
    obsub.required = True
    oblist = obsub.add_parser("list", help="failed messages (or --pending)")
    oblist.add_argument("--pending", action="store_true", help="list waiting messages instead")
    oblist.set_defaults(func=cmd_outbox_list)
    obretry = obsub.add_parser("retry", help="queue a failed message again")
    obretry.add_argument("id", type=int)
    obretry.set_defaults(func=cmd_outbox_retry)

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

    sandbox = sub.add_parser("sandbox", help="sandbox data")
    sbsub = sandbox.add_subparsers(dest="sandbox_cmd", metavar="ACTION")
    sbsub.required = True
    sbsub.add_parser("reset", help="restore the demo data").set_defaults(func=cmd_sandbox_reset)

    for extend in _extensions():
        extend(sub)
    return p


def _extensions() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    """Feature packages that add their own commands."""
    from bot.audit_trail.cli import add_cli as audit_cli
    from bot.calendar.cli import add_cli as graph_cli
    from bot.digests.cli import add_cli as digest_cli
    from bot.leads.cli import add_cli as leads_cli
    from bot.members.cli import add_cli as members_cli

    return [graph_cli, leads_cli, digest_cli, members_cli, audit_cli]


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
        from integrations.graph import GraphConfigError, client_from_settings

        try:
            client_from_settings(settings)  # no network call: checks the credentials' shape
        except GraphConfigError as exc:
            print(f"prescreen-bot: configuration error: {exc}", file=sys.stderr)
            return EXIT_INVALID
    setup_logging(settings.log_level)
    try:
        return int(args.func(args, settings, out))
    except SettingsError as exc:  # e.g. a start that would fall back to the sandbox on real settings
        print(f"prescreen-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_FAIL


# ----- commands -----

@contextmanager
def open_db(settings: Settings, *, upgrade: bool = True) -> Iterator[Database]:
    """The database for one CLI command (schema upgraded first unless told otherwise)."""
    from storage import migrate
    from storage.db import Database

    if upgrade:
        migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        yield db
    finally:
        db.dispose()


def cli_keys(settings: Settings) -> list[str]:
    """The encryption keys a command reads patient data with: the configured ones, or the
    sandbox's own key in sandbox mode (never beside a real setting); empty when there are none."""
    keys = settings.encryption_keys
    if not keys and settings.sandbox and not settings.sandbox_conflicts():
        from bot.runtime import sandbox_key

        keys = [sandbox_key(settings.data_dir)]
    return keys


def cli_context(settings: Settings, db: Database, keys: list[str] | None = None) -> AppContext:
    """A context for offline commands: no Slack calls are made (messages go to the outbox).
    Without keys a throwaway one is used, so nothing stored can be decrypted by mistake."""
    from slack_sdk import WebClient

    from bot.context import AppContext
    from storage.crypto import PHICipher

    keys = keys if keys is not None else cli_keys(settings)
    return AppContext(settings=settings, db=db, cipher=PHICipher(keys or [PHICipher.generate_key()]),
                      slack=WebClient(token=None))


def _require_schema(settings: Settings) -> str | None:
    from storage import migrate

    with open_db(settings, upgrade=False) as db:
        try:
            current = migrate.current_revision(db.engine)
        except Exception as exc:
            return f"cannot reach the database ({type(exc).__name__}); check DATABASE_URL"
    head = migrate.head_revision(settings.database_url)
    if current != head:
        return f"the database schema is at {current or 'nothing'}, not {head}: run `prescreen-bot migrate`"
    return None


def _db_role_refused(settings: Settings) -> bool:
    """Warn (one line) when the app's database role can rewrite the audit trail; True when
    PRESCREEN_REQUIRE_SEPARATE_DB_ROLE says to refuse to start then."""
    from bot.audit_trail.roles import check_running_role

    with open_db(settings, upgrade=False) as db:
        check = check_running_role(settings, db)
    if check.refuse:
        print(f"prescreen-bot: {check.message}", file=sys.stderr)
    elif check.message:
        logging.getLogger("prescreen.db").warning("%s", check.message)
    return check.refuse


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.server import serve
    from storage import migrate

    settings.check_sandbox()
    migrate.upgrade(settings.database_url)
    if _db_role_refused(settings):
        return EXIT_FAIL
    serve(settings, with_worker=True)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.server import serve
    from storage import migrate

    settings.check_sandbox()
    if settings.sandbox:
        migrate.upgrade(settings.database_url)
    elif problem := _require_schema(settings):
        print(f"prescreen-bot: {problem}", file=sys.stderr)
        return EXIT_FAIL
    if _db_role_refused(settings):
        return EXIT_FAIL
    serve(settings, with_worker=False)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.runtime import build_runtime
    from bot.scheduler import run_worker

    settings.check_sandbox()
    if not settings.sandbox and (problem := _require_schema(settings)):
        print(f"prescreen-bot: {problem}", file=sys.stderr)
        return EXIT_FAIL
    if _db_role_refused(settings):
        return EXIT_FAIL
    rt = build_runtime(settings, migrate_db=settings.sandbox)
    try:
        run_worker(rt.ctx)
    finally:
        rt.close()
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from storage import migrate

    try:
        migrate.upgrade(settings.database_url)
    except Exception as exc:
        print(f"prescreen-bot: migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"database is at schema {migrate.head_revision(settings.database_url)}", file=out)
    from bot.audit_trail.roles import migrate_report

    with open_db(settings, upgrade=False) as db:
        for line in migrate_report(db):
            print(line, file=out)
    return EXIT_OK


def cmd_studies_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.operator import operator_actor
    from bot.studies.importer import ImportErrors, import_studies

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
    from storage.repositories import studies as repo

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


def cmd_jobs_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.scheduler import job_specs

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
    from bot.runtime import build_runtime
    from bot.scheduler import find_job, job_specs

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


def cmd_outbox_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from storage.repositories import outbox as repo

    with open_db(settings) as db, db.session() as session:
        rows = repo.pending(session) if args.pending else repo.failed(session)
        if not rows:
            print("Nothing " + ("waiting." if args.pending else "failed."), file=out)
        for r in rows:
            print(f"{r.id:>6}  {r.status:<8} {r.kind:<16} to {r.channel:<12} tries {r.attempts}  "
                  f"{r.last_error or ''}", file=out)
    return EXIT_OK


def cmd_outbox_retry(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import datetime as dt

    from storage.repositories import outbox as repo

    with open_db(settings) as db, db.session() as session:
        ok = repo.requeue(session, args.id, dt.datetime.now(dt.UTC))
    if not ok:
        print(f"prescreen-bot: no failed message {args.id}; see `prescreen-bot outbox list`",
              file=sys.stderr)
        return EXIT_INVALID
    print(f"message {args.id} queued again; the worker sends it within seconds", file=out)
    return EXIT_OK


def cmd_keys_generate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from storage.crypto import PHICipher

    print(PHICipher.generate_key(), file=out)
    return EXIT_OK


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.keys import rotate_keys
    from storage.crypto import PHICipher, PHICipherError

    keys = settings.encryption_keys
    if not keys:
        print("prescreen-bot: PRESCREEN_ENCRYPTION_KEYS is empty; nothing to rotate with",
              file=sys.stderr)
        return EXIT_INVALID
    with open_db(settings) as db:
        try:
            report = rotate_keys(db, PHICipher(keys))
        except PHICipherError:
            print("prescreen-bot: some patient data cannot be decrypted with the configured keys; "
                  "put the old key back at the end of PRESCREEN_ENCRYPTION_KEYS and run again",
                  file=sys.stderr)
            return EXIT_FAIL
    print(f"{report}. You can now remove the old key(s) from PRESCREEN_ENCRYPTION_KEYS.", file=out)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.errors import DomainError
    from bot.export import export_csv, parse_dates, phi_reason

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


def cmd_sandbox_reset(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.sandbox.reset import reset_sandbox

    reset_sandbox(settings)  # refuses (SettingsError) any database but the sandbox's own
    print("sandbox data restored; restart `prescreen-bot run` if it is running", file=out)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
