"""DigestRun rows: one per (scope, period). The row is the claim — whoever inserts it sends."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import savepoint
from storage.models import DigestRun

SENT, SKIPPED, EMPTY = "sent", "skipped", "empty"


def get(session: Session, scope: str, period: str) -> DigestRun | None:
    stmt = select(DigestRun).where(DigestRun.scope == scope, DigestRun.period == period)
    return session.scalars(stmt).first()


def exists(session: Session, scope: str, period: str) -> bool:
    stmt = select(DigestRun.id).where(DigestRun.scope == scope, DigestRun.period == period)
    return session.scalar(stmt) is not None


def existing(session: Session, scopes: list[str], periods: set[str]) -> set[tuple[str, str]]:
    """Which of these (scope, period) runs are recorded (a superset query, filtered here)."""
    if not scopes:
        return set()
    found: set[tuple[str, str]] = set()
    for i in range(0, len(scopes), 500):
        stmt = select(DigestRun.scope, DigestRun.period).where(
            DigestRun.scope.in_(scopes[i:i + 500]), DigestRun.period.in_(sorted(periods)))
        found.update((sc, pe) for sc, pe in session.execute(stmt))
    return found


def claim(session: Session, *, scope: str, period: str, status: str, late: bool,
          now: dt.datetime) -> bool:
    """Insert the run; False when another worker (or an earlier tick) already has it.

    On PostgreSQL a concurrent insert waits for the first transaction and then fails on the
    unique key; the savepoint keeps the caller's transaction usable either way.
    """
    try:
        with savepoint(session):
            session.add(DigestRun(scope=scope, period=period, status=status, late=late,
                                  created_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def runs(session: Session, scope: str | None = None) -> list[DigestRun]:
    stmt = select(DigestRun).order_by(DigestRun.id)
    if scope is not None:
        stmt = stmt.where(DigestRun.scope == scope)
    return list(session.scalars(stmt))
