"""Is the app's database role unable to rewrite the audit trail? Checked at `migrate` (for the
roles the app runs as) and when `serve`, `worker` or `run` start (for the role they connect as)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from storage import db_roles
from storage.db import Database

FIX = "`prescreen-bot db grant-app-role ROLE` (README: Deployment)"


@dataclass(frozen=True)
class RoleCheck:
    refuse: bool  # the process must not start
    message: str | None  # one line, or None when all is well


def check_running_role(settings: Settings, db: Database) -> RoleCheck:
    """The role this process connects as must not be able to rewrite the audit trail. A warning
    by default; a refusal with PRESCREEN_REQUIRE_SEPARATE_DB_ROLE=true."""
    require = settings.prescreen_require_separate_db_role
    if settings.sandbox:
        return RoleCheck(False, None)
    if not db.is_postgres:
        if require:
            return RoleCheck(True, "PRESCREEN_REQUIRE_SEPARATE_DB_ROLE=true needs PostgreSQL "
                                   "(SQLite has no database roles); unset it or use PostgreSQL")
        return RoleCheck(False, None)
    with db.engine.connect() as conn:
        rights = db_roles.connected_role(conn)
    if rights is None or not rights.can_rewrite:
        return RoleCheck(False, None)
    hint = ("; set PRESCREEN_REQUIRE_SEPARATE_DB_ROLE=true to refuse this" if not require else "")
    return RoleCheck(require, f"database role {rights.role} can rewrite the audit trail "
                              f"({rights.why()}): run the app as a role that may only INSERT and "
                              f"SELECT on {db_roles.AUDIT_TABLE}, see {FIX}{hint}")


def migrate_report(db: Database) -> list[str]:
    """After a migration on PostgreSQL: which roles the app may run as, and what is wrong."""
    if not db.is_postgres:
        return []
    with db.engine.connect() as conn:
        roles = db_roles.app_roles(conn)
        owner = db_roles.connected_role(conn)
        lines = []
        if not roles:
            who = owner.owner_name if owner else "its owner"
            lines.append(f"note: no role but {who} may write the audit trail, so the app would run "
                         f"as a role that can rewrite it; create one that may only INSERT and "
                         f"SELECT: {FIX}")
        for r in roles:
            missing = db_roles.tables_without_access(conn, r.role)
            if r.rewrite:
                lines.append(f"warning: app role {r.role} can rewrite the audit trail "
                             f"({r.why()}): prescreen-bot db grant-app-role {r.role} --apply")
            elif missing:
                lines.append(f"warning: app role {r.role} has no access to {', '.join(missing)}: "
                             f"prescreen-bot db grant-app-role {r.role} --apply")
            else:
                lines.append(f"app role {r.role} may only INSERT and SELECT on the audit trail")
    return lines
