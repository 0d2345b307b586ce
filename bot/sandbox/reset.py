"""`prescreen-bot sandbox reset`: wipe the sandbox database and load the demo data again."""

from __future__ import annotations

from sqlalchemy import text

from bot.config import Settings
from bot.sandbox.runtime import demo_file
from bot.studies.importer import import_studies
from storage import migrate
from storage.db import Database
from storage.models import Base


def reset_sandbox(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        migrate.upgrade(settings.database_url)
        import_studies(db, demo_file(), actor="sandbox")
    finally:
        db.dispose()
