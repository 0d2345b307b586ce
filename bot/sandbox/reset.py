"""`prescreen-bot sandbox reset`: wipe the sandbox database and load the demo data again."""

from __future__ import annotations

from sqlalchemy import text

from bot.app import create_context
from bot.config import Settings
from bot.runtime import sandbox_key
from bot.sandbox.runtime import SANDBOX_TOKEN, demo_file
from bot.sandbox.seed import seed_demo
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
        ctx = create_context(settings, db=db, bot_token=SANDBOX_TOKEN,
                             encryption_keys=settings.encryption_keys or [sandbox_key(settings.data_dir)])
        seed_demo(ctx)
    finally:
        db.dispose()
