"""PostgreSQL roles and the audit trail: who may rewrite `audit_events`, and the GRANTs that make
the app's role one that may only INSERT and SELECT on it (the migrating role stays the owner)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text

from storage.models import AuditEvent, Base, DecisionSignature

AUDIT_TABLE = AuditEvent.__tablename__
# tables the app's role may only INSERT into and SELECT from (the owner migrates them)
APPEND_ONLY = (AUDIT_TABLE, DecisionSignature.__tablename__)
REWRITE = ("UPDATE", "DELETE", "TRUNCATE")
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")

_RIGHTS = """
SELECT r.rolname, r.rolsuper, pg_has_role(r.oid, c.relowner, 'MEMBER') AS owner,
       pg_get_userbyid(c.relowner) AS owner_name,
       has_table_privilege(r.oid, c.oid, 'INSERT') AS can_insert,
       has_table_privilege(r.oid, c.oid, 'UPDATE') AS can_update,
       has_table_privilege(r.oid, c.oid, 'DELETE') AS can_delete,
       has_table_privilege(r.oid, c.oid, 'TRUNCATE') AS can_truncate
FROM pg_class c, pg_roles r
WHERE c.oid = to_regclass(:table) AND {who}
ORDER BY r.rolname
"""


@dataclass(frozen=True)
class RoleRights:
    role: str
    superuser: bool
    owner: bool  # owns audit_events, or is a member of the role that does
    owner_name: str
    can_insert: bool
    rewrite: tuple[str, ...]  # the UPDATE/DELETE/TRUNCATE privileges it holds

    @property
    def can_rewrite(self) -> bool:
        return self.superuser or self.owner or bool(self.rewrite)

    def why(self) -> str:
        """Why this role can rewrite the trail, in a few words."""
        if self.superuser:
            return "superuser"
        if self.owner:
            return "owner" if self.role == self.owner_name else f"member of its owner {self.owner_name}"
        return ", ".join(self.rewrite)


def _rights(conn: Connection, who: str, **params: str) -> list[RoleRights]:
    rows = conn.execute(text(_RIGHTS.format(who=who)), {"table": AUDIT_TABLE, **params}).all()
    return [RoleRights(r.rolname, r.rolsuper, r.owner, r.owner_name, r.can_insert,
                       tuple(v for v, ok in zip(REWRITE, (r.can_update, r.can_delete, r.can_truncate),
                                                strict=True) if ok)) for r in rows]


def connected_role(conn: Connection) -> RoleRights | None:
    """The rights of the role this connection runs as; None if the table does not exist yet."""
    found = _rights(conn, "r.rolname = current_user")
    return found[0] if found else None


def app_roles(conn: Connection) -> list[RoleRights]:
    """Login roles other than the owner and superusers that may write the audit trail: the
    roles the app runs as."""
    return [r for r in _rights(conn, "r.rolcanlogin AND NOT r.rolsuper")
            if r.can_insert and not r.owner]


def role_exists(conn: Connection, role: str) -> bool:
    return bool(conn.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": role}))


def tables_without_access(conn: Connection, role: str) -> list[str]:
    """The app's tables this role may not even SELECT from (e.g. added by a later migration)."""
    return [t for t in Base.metadata.tables
            if not conn.scalar(text("SELECT has_table_privilege(:r, to_regclass(:t), 'SELECT')"),
                               {"r": role, "t": t})]


def grant_statements(conn: Connection, role: str) -> list[str]:
    """SQL giving `role` what the app needs: read/write on every table except the audit trail,
    and the signatures of decisions, where it may only INSERT and SELECT. Run it as the owner
    after each migration."""
    if not ROLE_NAME.match(role):
        raise ValueError(f"{role!r} is not a plain role name")
    schema = conn.scalar(text("SELECT current_schema()"))
    q = f'"{role}"'
    tables = ", ".join(f'"{t}"' for t in Base.metadata.tables if t not in APPEND_ONLY)
    return [
        f'GRANT USAGE ON SCHEMA "{schema}" TO {q};',
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {q};",
        *(f'REVOKE ALL ON "{t}" FROM {q};' for t in APPEND_ONLY),
        *(f'GRANT SELECT, INSERT ON "{t}" TO {q};' for t in APPEND_ONLY),
        f'GRANT SELECT ON "alembic_version" TO {q};',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {q};',
    ]


def apply_grants(conn: Connection, role: str) -> None:
    """Run the statements of :func:`grant_statements` (as the tables' owner)."""
    for stmt in grant_statements(conn, role):
        conn.execute(text(stmt))
