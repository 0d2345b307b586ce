"""`prescreen-bot sandbox reset`: delete the sandbox's own database file and load the demo again.

Only the sandbox's file (``DATA_DIR/prescreen-sandbox.db``) is ever touched: with any real
setting present the reset is refused before a database is opened, so a real database (its audit
trail and the trigger that keeps it append-only) is never dropped or altered."""

from __future__ import annotations

from pathlib import Path

from app.factory import create_context
from app.runtime import sandbox_key
from bot.config import SANDBOX_DB_FILE, Settings, SettingsError
from bot.studies.importer import import_studies
from sandbox.seed import seed_demo
from sandbox.state import SANDBOX_TOKEN, demo_file
from storage import migrate
from storage.db import Database


def sandbox_db_path(settings: Settings) -> Path:
    """The sandbox's own SQLite file; SettingsError when the configured database is not it."""
    if not settings.sandbox:
        raise SettingsError("sandbox reset only runs without SLACK_BOT_TOKEN (it wipes data)")
    found = settings.sandbox_conflicts()
    if found:
        raise SettingsError(
            f"sandbox reset only wipes the sandbox's own database, but {', '.join(found)} "
            f"{'is' if len(found) == 1 else 'are'} set: nothing was changed. Unset "
            f"{'it' if len(found) == 1 else 'them'} to reset the sandbox.")
    return settings.data_dir / SANDBOX_DB_FILE


def reset_sandbox(settings: Settings) -> None:
    path = sandbox_db_path(settings)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        import_studies(db, demo_file(), actor="sandbox")
        ctx = create_context(settings, db=db, bot_token=SANDBOX_TOKEN,
                             encryption_keys=[sandbox_key(settings.data_dir)])
        seed_demo(ctx)
    finally:
        db.dispose()
