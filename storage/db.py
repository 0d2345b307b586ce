"""Engine and session scope. No global session: callers hold a Database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.audit import guard_append_only


def make_engine(url: str, **kwargs: Any) -> Engine:
    # A database error names the statement, never its values (screening answers, ciphertext).
    kwargs.setdefault("hide_parameters", True)
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
    return create_engine(url, **kwargs)


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
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "before_flush", guard_append_only)

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
