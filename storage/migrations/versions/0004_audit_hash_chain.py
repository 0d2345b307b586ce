"""audit_events: hash chain (seq, prev_hash, hash) and TRUNCATE refused too

Existing events are chained in id order. On PostgreSQL a BEFORE TRUNCATE trigger joins the
UPDATE/DELETE one (SQLite has no TRUNCATE; its DELETE triggers already fire for a DELETE without
WHERE, because a table with triggers is never emptied by the truncate shortcut).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

from storage.audit import GENESIS, event_hash

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = ("UPDATE", "DELETE")
FIELDS = ("at", "actor", "action", "entity", "entity_id", "before", "after", "reason")
events = sa.table(
    "audit_events", sa.column("id", sa.Integer), sa.column("at", sa.DateTime),
    *(sa.column(c, sa.String) for c in ("actor", "action", "entity", "entity_id", "reason")),
    sa.column("before", sa.JSON), sa.column("after", sa.JSON),
    sa.column("seq", sa.Integer), sa.column("prev_hash", sa.String), sa.column("hash", sa.String),
)


def _sqlite_triggers(create: bool) -> None:
    for verb in SQLITE_TRIGGERS:
        if create:
            op.execute(f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                       "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")
        else:
            op.execute(f"DROP TRIGGER audit_events_no_{verb.lower()}")


def _chain_existing(bind: sa.Connection) -> None:
    seq, prev, last_id = 0, GENESIS, 0
    update = (events.update().where(events.c.id == sa.bindparam("b_id"))
              .values(seq=sa.bindparam("b_seq"), prev_hash=sa.bindparam("b_prev"),
                      hash=sa.bindparam("b_hash")))
    while rows := bind.execute(sa.select(events.c.id, *(events.c[f] for f in FIELDS))
                               .where(events.c.id > last_id).order_by(events.c.id)
                               .limit(5000)).all():
        params = []
        for r in rows:
            values = {f: getattr(r, f) for f in FIELDS}
            values["at"] = values["at"].replace(tzinfo=dt.UTC)  # stored as naive UTC
            seq += 1
            h = event_hash(seq, prev, values)
            params.append({"b_id": r.id, "b_seq": seq, "b_prev": prev, "b_hash": h})
            prev = h
        bind.execute(update, params)
        last_id = rows[-1].id


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    if pg:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
    else:
        _sqlite_triggers(create=False)
    for name, length in (("seq", None), ("prev_hash", 64), ("hash", 64)):
        op.add_column("audit_events", sa.Column(
            name, sa.Integer() if length is None else sa.String(length=length), nullable=True))
    _chain_existing(bind)
    with op.batch_alter_table("audit_events") as batch:
        for name in ("seq", "prev_hash", "hash"):
            batch.alter_column(name, nullable=False)
        batch.create_index("ix_audit_events_seq", ["seq"], unique=True)
    if pg:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change")
        op.execute("CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()")
    else:
        _sqlite_triggers(create=True)


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    else:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index("ix_audit_events_seq")
        for name in ("hash", "prev_hash", "seq"):
            batch.drop_column(name)
    if not pg:
        _sqlite_triggers(create=True)
