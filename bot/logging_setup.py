"""Logging: one line per record, no request bodies (they can carry PHI)."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from types import TracebackType

from sqlalchemy.exc import StatementError

# Libraries that log whole request/response bodies at DEBUG; bodies may hold PHI.
BODY_LOGGERS = ("slack_bolt", "slack_sdk", "urllib3", "msal", "sqlalchemy.engine")


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class QuietFormatter(logging.Formatter):
    """Tracebacks keep their frames and exception types but drop exception messages, which can
    quote request data or patient identity (a driver's error text can quote a row's values); a
    database error keeps its SQL statement, which has placeholders, not values."""

    def formatException(self, ei: ExcInfo) -> str:
        exc = ei[1]
        return exception_summary(exc) if exc is not None else ""


def exception_summary(exc: BaseException) -> str:
    """An exception and its causes: types, frames, and a database error's SQL; no messages."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = f"{type(current).__module__}.{type(current).__qualname__}"
        head = kind
        if isinstance(current, StatementError):  # the statement, never the driver's text
            head += f" ({type(current.orig).__name__}) [SQL: {current.statement}]"
        frames = traceback.extract_tb(current.__traceback__)
        parts.append("\n".join([head, *(f'  File "{f.filename}", line {f.lineno}, in {f.name}'
                                          for f in frames)]))
        current = current.__cause__ or current.__context__
    return "\nwhich came from\n".join(parts)


class JsonFormatter(QuietFormatter):
    """LOG_FORMAT=json: one JSON object per line — at, level, logger, message, and when known
    the request kind and error reference (`extra={"request_kind": …, "error_ref": …}`); a
    traceback as frames and exception types only, like the text format."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key in ("request_kind", "error_ref"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


def setup_logging(level: str, fmt: str = "text") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_prescreen", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter() if fmt == "json"
            else QuietFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
        handler._prescreen = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    floor = max(logging.getLevelName(level), logging.INFO)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(max(floor, logging.WARNING))
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
