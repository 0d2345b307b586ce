"""Story: an operator runs `prescreen-bot migrate` on an empty database (SQLite or PostgreSQL)
and gets exactly the schema the code expects; the audit trail cannot be rewritten."""

from __future__ import annotations

import io

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from app import cli
from storage import audit, migrate
from storage.db import Database
from storage.models import AuditEvent, Base


def test_migrate_command_upgrades_an_empty_database_to_head(
    empty_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", empty_url)
    out = io.StringIO()
    assert cli.main(["migrate"], out=out) == 0
    head = migrate.head_revision(empty_url)
    assert f"schema {head}" in out.getvalue()
    db = Database(empty_url)
    try:
        assert migrate.current_revision(db.engine) == head
        tables = set(inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        # running it again is a no-op
        assert cli.main(["migrate"], out=io.StringIO()) == 0
    finally:
        db.dispose()


def test_models_match_migrations(db: Database) -> None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_audit_events_are_append_only(db: Database) -> None:
    with db.session() as s:
        audit.record(s, actor="U0COORD01", action="candidate.viewed", entity="candidate",
                     entity_id="ALZ-0001")
    with pytest.raises(PermissionError), db.session() as s:
        ev = s.get(AuditEvent, 1)
        assert ev is not None
        ev.actor = "someone-else"
    with pytest.raises(PermissionError), db.session() as s:
        s.delete(s.get(AuditEvent, 1))
    # and below the ORM, the database itself refuses
    with pytest.raises(DatabaseError), db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'x'"))
    with pytest.raises(DatabaseError), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))
    with db.session() as s:
        assert [e.actor for e in audit.history(s, "candidate", "ALZ-0001")] == ["U0COORD01"]


def test_a_unit_of_work_that_fails_leaves_nothing_even_if_it_began_with_a_savepoint(
    db: Database,
) -> None:
    """The first write of a request is often a savepoint (the retry de-duplication claim); a
    later error must still roll back everything, on SQLite as on PostgreSQL."""
    from storage.models import ProcessedRequest
    from storage.repositories import requests

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.session() as s:
        assert requests.claim(s, "retry-key-1")
        raise Boom
    with db.session() as s:
        assert s.get(ProcessedRequest, "retry-key-1") is None
        assert requests.claim(s, "retry-key-1")
    with db.session() as s:
        assert s.get(ProcessedRequest, "retry-key-1") is not None
        assert not requests.claim(s, "retry-key-1")
