"""Callback rows: claims for reminders and escalations (exactly once with any number of
workers), lists for people, and the cadence candidates.

A claim is a SELECT of due ids (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers split the
work) followed by one conditional UPDATE … RETURNING that re-checks due-ness: the ids it
returns are this worker's alone, on SQLite as well.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Update, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from storage import kpi_marks
from storage.models import Callback, Candidate, Member, PrescreenCall, Study
from storage.vocabulary import CALLBACK_OPEN_STATUSES as OPEN
from storage.vocabulary import UNANSWERED_OUTCOMES


def _reminder_due(now: dt.datetime) -> list:  # type: ignore[type-arg]
    return [Callback.status.in_(OPEN), Callback.remind_at <= now,
            or_(Callback.reminded_at.is_(None), Callback.reminded_at < Callback.remind_at)]


def _pick_reminders(now: dt.datetime, limit: int) -> Select[tuple[int]]:
    """The next due reminders, oldest first, skipping rows another worker holds."""
    return (select(Callback.id).where(*_reminder_due(now))
            .order_by(Callback.remind_at, Callback.id).limit(limit)
            .with_for_update(skip_locked=True))


def _claim(now: dt.datetime, late_before: dt.datetime,
           picked: Sequence[int] | Select[tuple[int]]) -> Update:
    """The UPDATE that marks the `picked` reminders sent now (still due: a concurrent claim
    that won them makes them drop out)."""
    return (update(Callback).where(Callback.id.in_(picked), *_reminder_due(now))
            .values(reminded_at=now, reminded_late=Callback.remind_at < late_before,
                    version=Callback.version + 1))


def claim_reminders(session: Session, *, now: dt.datetime, late_before: dt.datetime,
                    limit: int) -> list[int]:
    """Mark up to `limit` due reminders as sent now; return the ids this caller won."""
    ids = session.scalars(_pick_reminders(now, limit)).all()
    if not ids:
        return []
    stmt = (_claim(now, late_before, ids).returning(Callback.id)
            .execution_options(synchronize_session=False))
    return list(session.scalars(stmt).all())


def _overdue(cutoff: dt.datetime) -> list:  # type: ignore[type-arg]
    return [Callback.status.in_(OPEN), Callback.kind == "requested", Callback.due_at <= cutoff,
            Callback.escalated_at.is_(None)]


def claim_overdue(session: Session, *, now: dt.datetime, cutoff: dt.datetime,
                  limit: int) -> list[int]:
    """Mark requested callbacks due before `cutoff` as missed; return the ids this caller won."""
    ids = session.scalars(select(Callback.id).where(*_overdue(cutoff))
                          .order_by(Callback.due_at, Callback.id).limit(limit)
                          .with_for_update(skip_locked=True)).all()
    if not ids:
        return []
    stmt = (update(Callback).where(Callback.id.in_(ids), *_overdue(cutoff))
            .values(status="missed", escalated_at=now, version=Callback.version + 1)
            .returning(Callback.id).execution_options(synchronize_session=False))
    won = list(session.scalars(stmt).all())
    kpi_marks.mark_callbacks(session, won)
    return won


def load(session: Session, ids: Sequence[int]) -> list[Callback]:
    """Callbacks with candidate, study and owner loaded, in id order."""
    if not ids:
        return []
    stmt = (select(Callback).where(Callback.id.in_(ids))
            .options(joinedload(Callback.candidate).joinedload(Candidate.study),
                     joinedload(Callback.owner))
            .order_by(Callback.id))
    return list(session.scalars(stmt).unique())


@dataclass(frozen=True)
class Reminder:
    """What a reminder DM needs of a callback, its candidate, study and owner (read in one
    query, without building ORM objects: a tick reads thousands)."""

    id: int
    version: int
    kind: str
    due_at: dt.datetime
    remind_at: dt.datetime
    reminded_late: bool
    ref_code: str
    do_not_call: bool
    candidate_tz: str
    attempts: int
    study_key: str
    max_attempts: int
    owner_slack_id: str
    owner_tz: str
    owner_active: bool


def claim_reminder_rows(session: Session, *, now: dt.datetime, late_before: dt.datetime,
                        limit: int) -> list[Reminder]:
    """claim_reminders, then what their DMs need (`reminders`). On PostgreSQL both in one
    statement: the claiming UPDATE as a CTE joined to candidate, study and owner."""
    if session.get_bind().dialect.name != "postgresql":
        return reminders(session, claim_reminders(session, now=now, late_before=late_before,
                                                  limit=limit))
    claimed = (_claim(now, late_before, _pick_reminders(now, limit))
               .returning(*(Callback.__table__.c[name] for name in _REMINDER_COLUMNS))
               .cte("claimed"))
    return [Reminder(*row) for row in session.execute(_reminder_rows(claimed))]


def reminders(session: Session, ids: Sequence[int]) -> list[Reminder]:
    """The claimed callbacks `ids` as Reminder rows, in id order."""
    if not ids:
        return []
    table = Callback.__table__
    stmt = _reminder_rows(table).where(table.c.id.in_(ids))  # type: ignore[arg-type]
    return [Reminder(*row) for row in session.execute(stmt)]


# what a Reminder takes from the callback row (or from the claiming UPDATE's RETURNING)
_REMINDER_COLUMNS = ("id", "version", "kind", "due_at", "remind_at", "reminded_late",
                     "candidate_id", "owner_id")


def _reminder_rows(callbacks: Any) -> Select[Any]:
    """SELECT of Reminder's fields from `callbacks` (the table, or the claiming CTE) joined to
    candidate, study and owner, in id order."""
    c = callbacks.c
    return (select(c.id, c.version, c.kind, c.due_at, c.remind_at, c.reminded_late,
                   Candidate.ref_code, Candidate.do_not_call, Candidate.timezone,
                   Candidate.attempts, Study.key, Study.max_attempts, Member.slack_user_id,
                   Member.timezone, Member.active)
            .join(Candidate, Candidate.id == c.candidate_id)
            .join(Study, Study.id == Candidate.study_id)
            .join(Member, Member.id == c.owner_id)
            .order_by(c.id))


def get(session: Session, callback_id: int) -> Callback | None:
    return load(session, [callback_id])[0] if session.get(Callback, callback_id) else None


def open_for_candidate(session: Session, candidate_id: int) -> list[Callback]:
    stmt = select(Callback).where(Callback.candidate_id == candidate_id, Callback.status.in_(OPEN))
    return list(session.scalars(stmt))


def missed_uncompleted(session: Session, candidate_id: int) -> list[Callback]:
    stmt = select(Callback).where(Callback.candidate_id == candidate_id, Callback.status == "missed",
                                  Callback.completed_at.is_(None))
    return list(session.scalars(stmt))


def upcoming_for_owner(session: Session, owner_id: int, *, since: dt.datetime,
                       limit: int = 30) -> list[Callback]:
    stmt = (select(Callback).where(Callback.owner_id == owner_id, Callback.status.in_(OPEN),
                                   Callback.due_at >= since)
            .options(joinedload(Callback.candidate).joinedload(Candidate.study))
            .order_by(Callback.due_at, Callback.id).limit(limit))
    return list(session.scalars(stmt).unique())


def count_upcoming_for_owner(session: Session, owner_id: int, *, since: dt.datetime) -> int:
    stmt = select(func.count()).select_from(Callback).where(
        Callback.owner_id == owner_id, Callback.status.in_(OPEN), Callback.due_at >= since)
    return int(session.scalar(stmt) or 0)


def call_times_since(session: Session, candidate_id: int, since: dt.datetime) -> list[dt.datetime]:
    stmt = select(PrescreenCall.called_at).where(PrescreenCall.candidate_id == candidate_id,
                                                 PrescreenCall.called_at > since)
    return list(session.scalars(stmt))


def needing_cadence(session: Session, limit: int = 500) -> list[Candidate]:
    """Candidates left unanswered with no open callback: they need their next attempt planned."""
    has_open = exists().where(Callback.candidate_id == Candidate.id, Callback.status.in_(OPEN))
    stmt = (select(Candidate)
            .where(Candidate.status == "needs_call", Candidate.last_outcome.in_(UNANSWERED_OUTCOMES),
                   Candidate.do_not_call.is_(False), ~has_open)
            .options(joinedload(Candidate.study), joinedload(Candidate.owner))
            .order_by(Candidate.last_called_at, Candidate.id).limit(limit))
    return list(session.scalars(stmt).unique())


def close_many(session: Session, ids: Sequence[int], *, status: str,
               completed_at: dt.datetime | None) -> None:
    if ids:
        values: dict[str, object] = {"status": status, "version": Callback.version + 1}
        if completed_at is not None:
            values["completed_at"] = completed_at
        session.execute(update(Callback).where(Callback.id.in_(ids)).values(**values)
                        .execution_options(synchronize_session="fetch"))
        kpi_marks.mark_callbacks(session, ids)


def cas(session: Session, callback_id: int, version: int, **values: object) -> bool:
    """Compare-and-set on version: True when this caller's change won."""
    if "due_at" in values:
        kpi_marks.mark_callbacks(session, [callback_id])  # the day it leaves
    result = session.execute(
        update(Callback).where(and_(Callback.id == callback_id, Callback.version == version))
        .values(version=Callback.version + 1, **values)
        .execution_options(synchronize_session="fetch"))
    if result.rowcount and set(values) & {"due_at", "status", "completed_at"}:  # type: ignore[attr-defined]
        kpi_marks.mark_callbacks(session, [callback_id])
    return bool(result.rowcount)  # type: ignore[attr-defined]


def lock(session: Session, callback_id: int) -> Callback | None:
    """The callback, row-locked until commit."""
    return session.get(Callback, callback_id, with_for_update=True)


def add(session: Session, **fields: object) -> Callback:
    """A new callback row, flushed (so it has its id)."""
    cb = Callback(**fields)
    session.add(cb)
    session.flush()
    return cb
