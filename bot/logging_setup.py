"""Logging: one line per record, no request bodies (they can carry PHI)."""

from __future__ import annotations

import logging
import sys

# Libraries that log whole request/response bodies at DEBUG; bodies may hold PHI.
BODY_LOGGERS = ("slack_bolt", "slack_sdk", "urllib3", "msal", "sqlalchemy.engine")


def setup_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_prescreen", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
        handler._prescreen = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    floor = max(logging.getLevelName(level), logging.INFO)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(max(floor, logging.WARNING))
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
