"""Engine and session scope. No global session: callers hold a Database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from storage import audit, kpi_marks
from storage.bulk import json_dumps


def make_engine(url: str, **kwargs: Any) -> Engine:
    # Bound parameters (screening answers, ciphertext, lookup hashes) stay out of error messages,
    # and so out of every log line and traceback that quotes a database error.
    kwargs = {**kwargs, "hide_parameters": True, "json_serializer": json_dumps}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if "poolclass" not in kwargs:
        kwargs = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, **kwargs}
    engine = create_engine(url, **kwargs)
    event.listen(engine, "handle_error", _terse_database_errors)
    return engine


_QUOTED_VALUE = re.compile(r':\s*".*$', re.DOTALL)


def _terse_database_errors(ctx: ExceptionContext) -> None:
    """PostgreSQL's error text carries row values ("DETAIL: Failing row contains (…)", "Key
    (phone_index)=(…) already exists", "invalid input syntax …: "…""). Keep only the primary
    message, with any quoted value cut off, in the driver's exception and in SQLAlchemy's."""
    orig = ctx.original_exception
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        return
    terse = _QUOTED_VALUE.sub(": (value hidden)", primary)
    orig.args = (terse,)
    wrapped = ctx.sqlalchemy_exception
    if wrapped is not None:
        wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {terse}", *wrapped.args[1:])


def begin_writing(session: Session) -> None:
    """Make sure the session's transaction is really open before its first write.

    The sqlite3 driver opens a transaction only before INSERT/UPDATE/DELETE, not before a
    SAVEPOINT: a savepoint as the first write would run outside any transaction and its release
    would commit on the spot, surviving a later rollback. On SQLite this takes the write lock
    now (BEGIN IMMEDIATE); PostgreSQL needs nothing."""
    conn = session.connection()
    if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A nested transaction inside the caller's unit of work, on every database."""
    begin_writing(session)
    with session.begin_nested():
        yield


class Database:
    """One per process: an engine plus a session factory."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False,
                                      info={"audit_chained": True})
        audit.install(self._sessions)
        kpi_marks.install(self._sessions)  # KPI rollup marks, same transaction as the change

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
