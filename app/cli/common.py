"""What every command shares: exit codes, the database for one command, offline contexts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from slack_sdk import WebClient

from app.runtime import sandbox_key
from bot.config import Settings
from bot.context import AppContext
from storage import migrate
from storage.crypto import PHICipher
from storage.db import Database

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


@contextmanager
def open_db(settings: Settings, *, upgrade: bool = True) -> Iterator[Database]:
    """The database for one CLI command (schema upgraded first unless told otherwise)."""
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
        keys = [sandbox_key(settings.data_dir)]
    return keys


def cli_context(settings: Settings, db: Database, keys: list[str] | None = None) -> AppContext:
    """A context for offline commands: no Slack calls are made (messages go to the outbox).
    Without keys a throwaway one is used, so nothing stored can be decrypted by mistake."""
    keys = keys if keys is not None else cli_keys(settings)
    return AppContext(settings=settings, db=db, cipher=PHICipher(keys or [PHICipher.generate_key()]),
                      slack=WebClient(token=None))


def require_schema(settings: Settings) -> str | None:
    with open_db(settings, upgrade=False) as db:
        try:
            current = migrate.current_revision(db.engine)
        except Exception as exc:
            return f"cannot reach the database ({type(exc).__name__}); check DATABASE_URL"
    head = migrate.head_revision(settings.database_url)
    if current != head:
        return f"the database schema is at {current or 'nothing'}, not {head}: run `prescreen-bot migrate`"
    return None
