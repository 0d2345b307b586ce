"""The Slack outbox: rows written in the same transaction as the change they announce.

Claiming is safe with any number of dispatchers: candidates are selected (with
`FOR UPDATE SKIP LOCKED` on PostgreSQL) and then taken with a conditional UPDATE whose row
count says who won.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.bulk import copy_rows, worth_copying
from storage.db import savepoint
from storage.models import OutboxChannel, OutboxMessage

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


def enqueue(session: Session, *, key: str, kind: str, channel: str, payload: dict[str, Any],
            method: str = "chat.postMessage", parent_key: str | None = None,
            study_key: str | None = None, not_before: dt.datetime | None = None,
            now: dt.datetime) -> bool:
    """Add a message unless one with this idempotency key exists. True when added."""
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
        return False
    row = OutboxMessage(idempotency_key=key, kind=kind, method=method, channel=channel,
                        payload=payload, parent_key=parent_key, study_key=study_key,
                        status=PENDING, attempts=0, next_attempt_at=not_before or now,
                        created_at=now)
    try:
        with savepoint(session):
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def enqueue_many(session: Session, rows: list[dict[str, Any]], *, now: dt.datetime) -> int:
    """Add many messages in one statement; rows whose idempotency key exists are skipped.

    Each row has key, kind, channel, payload and optionally method, parent_key, study_key.
    """
    if not rows:
        return 0
    values = [{"idempotency_key": r["key"], "kind": r["kind"], "channel": r["channel"],
               "payload": r["payload"], "method": r.get("method", "chat.postMessage"),
               "parent_key": r.get("parent_key"), "study_key": r.get("study_key"),
               "status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
              for r in rows]
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    table = OutboxMessage.__table__
    # no RETURNING: it makes both drivers slow here (sqlite3 runs it row by row; on psycopg it
    # becomes one huge literal query per batch that the driver re-parses), and it cost most of a
    # reminder tick. SQLite: one executemany, which counts the rows it added. PostgreSQL: the
    # keys already queued are read first and the others inserted (COPYed when there are many; a
    # key that a concurrent transaction adds meanwhile then makes this one fail and roll back
    # whole: nothing half-queued).
    stmt = insert_fn(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    added = 0
    conn = session.connection()
    for start in range(0, len(values), 1000):
        batch = values[start:start + 1000]
        if dialect == "postgresql":
            queued = set(conn.execute(select(table.c.idempotency_key).where(
                table.c.idempotency_key.in_([v["idempotency_key"] for v in batch]))).scalars())
            batch = [v for v in batch if v["idempotency_key"] not in queued]
            if worth_copying(conn, batch):
                copy_rows(conn, table, batch)
            elif batch:
                conn.execute(stmt, batch)
            added += len(batch)
        else:
            added += conn.execute(stmt, batch).rowcount
    return added


def by_key(session: Session, key: str) -> OutboxMessage | None:
    return session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).first()


@dataclass(frozen=True)
class Claimed:
    """A row this dispatcher now holds. When an earlier send of it may have reached Slack (it was
    claimed and never recorded, or its connection broke mid-request), `unconfirmed` is the window
    in which that send happened: (start of the earliest such send, end of the latest lease)."""

    row: OutboxMessage
    unconfirmed: tuple[dt.datetime, dt.datetime] | None = None


def claim_due(session: Session, *, now: dt.datetime, limit: int, lease: dt.timedelta,
              channel_interval: dt.timedelta) -> list[Claimed]:
    """Take up to `limit` due rows, at most one per channel and only from channels whose pacing
    slot is free. A row left in SENDING by a crashed dispatcher is due again once its lease ran out.

    Every claim records when its send begins (`unconfirmed_since`, kept if already set); the
    claimed row says whether an earlier send is still unconfirmed, so the caller can look for it
    in Slack before posting again.

    Pacing is a row per channel (`outbox_channels.next_at`) taken with a conditional UPDATE:
    concurrent dispatchers serialise on that row. A claimed channel stays closed for the lease;
    the dispatcher reopens it `channel_interval` after the send (release_channel), so across
    processes a channel gets at most one message per interval.
    """
    due = or_(
        and_(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == SENDING, OutboxMessage.claimed_until <= now),
    )
    stmt = (select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.unconfirmed_since,
                   OutboxMessage.claimed_until).where(due)
            .order_by(OutboxMessage.id).limit(limit * 20))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=OutboxMessage, skip_locked=True)
    first_per_channel: dict[str, int] = {}
    earlier: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    for row_id, channel, since, until in session.execute(stmt):
        if channel in first_per_channel:
            continue
        first_per_channel[channel] = row_id
        if since is not None:
            earlier[row_id] = (since, min(until or now, now))
        if len(first_per_channel) >= limit:
            break
    claimed: list[int] = []
    # channel rows are locked in one global order (by name), so two dispatchers never wait on
    # each other's channels in a cycle (PostgreSQL would abort one as a deadlock)
    for channel, row_id in sorted(first_per_channel.items()):
        if channel_interval > dt.timedelta(0) and not _take_channel_slot(session, channel, now, lease):
            continue
        res = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, due)
            .values(status=SENDING, claimed_until=now + lease,
                    unconfirmed_since=func.coalesce(OutboxMessage.unconfirmed_since, now))
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(row_id)
    if not claimed:
        return []
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(claimed))
                           .order_by(OutboxMessage.id))
    return [Claimed(row, earlier.get(row.id)) for row in rows]


def _take_channel_slot(session: Session, channel: str, now: dt.datetime,
                       lease: dt.timedelta) -> bool:
    take = (update(OutboxChannel)
            .where(OutboxChannel.channel == channel, OutboxChannel.next_at <= now)
            .values(next_at=now + lease)
            .execution_options(synchronize_session=False))
    if session.execute(take).rowcount == 1:  # type: ignore[attr-defined]
        return True
    if session.get(OutboxChannel, channel) is not None:
        return False
    try:
        with savepoint(session):
            session.add(OutboxChannel(channel=channel, next_at=now + lease))
            session.flush()
    except IntegrityError:
        return False
    return True


def release_channel(session: Session, channel: str, at: dt.datetime) -> None:
    """Reopen a channel for the next message at `at` (its send time plus the pacing interval)."""
    session.execute(update(OutboxChannel).where(OutboxChannel.channel == channel)
                    .values(next_at=at).execution_options(synchronize_session=False))


def mark_sent(session: Session, row_id: int, *, ts: str | None, channel: str | None,
              now: dt.datetime) -> None:
    session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
        status=SENT, slack_ts=ts, posted_channel=channel, sent_at=now, claimed_until=None,
        unconfirmed_since=None, last_error=None, attempts=OutboxMessage.attempts + 1))


def mark_retry(session: Session, row_id: int, *, error: str, at: dt.datetime,
               count_attempt: bool = True, maybe_sent: bool = False) -> None:
    """Try again at `at`. `maybe_sent`: this attempt's request may have reached Slack (timeout,
    broken connection, Slack's own internal error), so it stays unconfirmed and the lease end is
    kept as the end of the window to search; otherwise Slack answered "not posted"."""
    values: dict[str, Any] = {"status": PENDING, "next_attempt_at": at, "last_error": error[:300]}
    if not maybe_sent:
        values.update(claimed_until=None, unconfirmed_since=None)
    if count_attempt:
        values["attempts"] = OutboxMessage.attempts + 1
    session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))


def mark_failed(session: Session, row_id: int, *, error: str) -> None:
    session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
        status=FAILED, claimed_until=None, last_error=error[:300],
        attempts=OutboxMessage.attempts + 1))


def failed(session: Session, limit: int = 50) -> list[OutboxMessage]:
    stmt = (select(OutboxMessage).where(OutboxMessage.status == FAILED)
            .order_by(OutboxMessage.id.desc()).limit(limit))
    return list(session.scalars(stmt))


def pending(session: Session, limit: int = 50) -> list[OutboxMessage]:
    stmt = (select(OutboxMessage).where(OutboxMessage.status.in_((PENDING, SENDING)))
            .order_by(OutboxMessage.id).limit(limit))
    return list(session.scalars(stmt))


def requeue(session: Session, row_id: int, now: dt.datetime) -> bool:
    res = session.execute(update(OutboxMessage)
                          .where(OutboxMessage.id == row_id, OutboxMessage.status == FAILED)
                          .values(status=PENDING, next_attempt_at=now, attempts=0))
    return res.rowcount == 1  # type: ignore[attr-defined]


def any_due_by(session: Session, horizon: dt.datetime) -> bool:
    """Whether a message waits or is being sent with its next attempt at or before `horizon`."""
    return bool(session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status.in_((PENDING, SENDING)), OutboxMessage.next_attempt_at <= horizon)))


def depth(session: Session, *, now: dt.datetime) -> tuple[int, float]:
    """Messages waiting (pending or being sent) and the age in seconds of the oldest one due."""
    n, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.next_attempt_at))
        .where(OutboxMessage.status.in_((PENDING, SENDING)))).one()
    if oldest is None or oldest > now:
        return int(n), 0.0
    return int(n), (now - oldest).total_seconds()
