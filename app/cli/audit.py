"""`prescreen-bot audit verify [--anchor HASH]` and `prescreen-bot db grant-app-role ROLE [--apply]`."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import TextIO

from app.cli.common import open_db, require_schema
from bot.config import Settings
from storage import audit, db_roles

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2
HEX = re.compile(r"^[0-9a-fA-F]{12,64}$")


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    au = sub.add_parser("audit", help="the tamper-evident audit trail")
    asub = au.add_subparsers(dest="audit_cmd", required=True, metavar="ACTION")
    v = asub.add_parser("verify", help="check the hash chain of every audit event; exit 1 at the "
                                       "first broken link")
    v.add_argument("--anchor", action="append", default=[], metavar="HASH",
                   help="a hash printed by an earlier verify (12+ hex characters) that must still "
                        "be in the chain; repeatable")
    v.set_defaults(func=cmd_audit_verify)

    dbp = sub.add_parser("db", help="database roles (PostgreSQL)")
    dsub = dbp.add_subparsers(dest="db_cmd", required=True, metavar="ACTION")
    g = dsub.add_parser("grant-app-role", help="print (or --apply) the GRANTs for the role the app "
                                               "runs as: INSERT and SELECT only on the audit trail")
    g.add_argument("role")
    g.add_argument("--apply", action="store_true",
                   help="run them now (DATABASE_URL must be the owner, the role that migrates)")
    g.set_defaults(func=cmd_grant_app_role)


def _fail(message: str, code: int) -> int:
    print(f"prescreen-bot: {message}", file=sys.stderr)
    return code


def cmd_audit_verify(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    bad = [a for a in args.anchor if not HEX.match(a)]
    if bad:
        return _fail(f"--anchor {bad[0]} is not a hash prefix (12 to 64 hex characters)",
                     EXIT_INVALID)
    if problem := require_schema(settings):
        return _fail(problem, EXIT_FAIL)
    with open_db(settings, upgrade=False) as db, db.engine.connect() as conn:
        verdict, missing = audit.verify(audit.chain_rows(conn), args.anchor)
    if verdict.broken is not None:
        b = verdict.broken
        print(f"audit trail BROKEN at event {b['id']} (seq {b['seq']}, {_at(b['at'])}): "
              f"{b['problem']}. The {verdict.events} events before it are intact.", file=out)
        return EXIT_FAIL
    if missing:
        print(f"audit trail BROKEN: anchor {sorted(missing)[0]} is no longer in the chain "
              f"({verdict.events} events): events were removed or the chain was rewritten.",
              file=out)
        return EXIT_FAIL
    if verdict.last is None:
        print("audit trail intact: 0 events", file=out)
    else:
        last = verdict.last
        print(f"audit trail intact: {verdict.events} events, last {last['hash'][:16]} at "
              f"{_at(last['at'])} (event {last['id']})", file=out)
    return EXIT_OK


def _at(t: object) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if isinstance(t, dt.datetime) else "?"


def cmd_grant_app_role(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if not db_roles.ROLE_NAME.match(args.role):
        return _fail(f"{args.role!r} is not a plain role name (letters, digits, _)", EXIT_INVALID)
    if not settings.is_postgres:
        return _fail("database roles exist only on PostgreSQL; DATABASE_URL is SQLite", EXIT_INVALID)
    with open_db(settings, upgrade=False) as db, db.engine.begin() as conn:
        exists = db_roles.role_exists(conn, args.role)
        statements = db_roles.grant_statements(conn, args.role)
        if not args.apply:
            if not exists:
                print(f"-- role {args.role} does not exist yet; create it first:\n"
                      f"-- CREATE ROLE \"{args.role}\" LOGIN PASSWORD '…';", file=out)
            print("\n".join(statements), file=out)
            return EXIT_OK
        if not exists:
            return _fail(f"role {args.role} does not exist: CREATE ROLE \"{args.role}\" LOGIN "
                         "PASSWORD '…' first", EXIT_INVALID)
        db_roles.apply_grants(conn, args.role)
    print(f"role {args.role} may now use the app's tables, and only INSERT and SELECT on the "
          "audit trail; run the app with it in DATABASE_URL", file=out)
    return EXIT_OK
