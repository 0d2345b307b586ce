"""Slack ids already processed: the retry de-duplication ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import savepoint
from storage.models import ProcessedRequest, utcnow


def claim(session: Session, key: str, result: dict[str, Any] | None = None) -> bool:
    """Record `key` inside the caller's transaction. False when it was processed already."""
    if session.get(ProcessedRequest, key) is not None:
        return False
    try:
        with savepoint(session):
            session.add(ProcessedRequest(key=key, at=utcnow(), result=result))
    except IntegrityError:
        return False
    return True


def result_of(session: Session, key: str) -> dict[str, Any] | None:
    row = session.scalars(select(ProcessedRequest).where(ProcessedRequest.key == key)).first()
    return None if row is None else row.result


def purge_before(session: Session, cutoff: dt.datetime) -> int:
    res = session.execute(delete(ProcessedRequest).where(ProcessedRequest.at < cutoff))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
