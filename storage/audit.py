"""Append-only, hash-chained audit trail. There is deliberately no update or delete function here.

Every event carries `seq` (1, 2, 3… with no gaps), `prev_hash` (the previous event's `hash`, or
GENESIS for the first) and `hash` = SHA-256 over a canonical serialisation of its fields (see
`canonical`). Changing, deleting or reordering any stored event breaks the chain at that event,
which `verify` reports.

Events are chained when their unit of work commits, not when they are recorded: the chain head is
locked only for the last instant of a transaction (after every other write of it has been
flushed), so two writers cannot fork the chain and cannot deadlock on it. On PostgreSQL the lock
is a transaction-scoped advisory lock; on SQLite the database write lock (BEGIN IMMEDIATE)
already serialises writers. The unique index on `seq` is the last line of defence.

Plain SHA-256, not a keyed HMAC: anyone (an auditor, a sponsor's QA) can check the chain without a
secret, and there is no key to rotate or lose. The price: whoever can write the table could
recompute the chain after an edit. The app's database role cannot (INSERT and SELECT only, see
storage.db_roles); against the owner, the head hash that `audit verify` prints is kept outside
the database and checked later with `--anchor`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, DateTime, Text, cast, event, insert, select, text, type_coerce
from sqlalchemy.orm import Session, SessionTransaction

from storage.bulk import copy_rows, worth_copying
from storage.models import AuditEvent, DecisionSignature, utcnow

FORMAT = "prescreen-audit/1"
GENESIS = "0" * 64
# pg_advisory_xact_lock key of the chain head: the bytes of "auditlog" as a signed 64-bit number
CHAIN_LOCK = int.from_bytes(b"auditlog", "big", signed=True)
_PENDING = "audit_pending"
_MARKS = "audit_savepoint_marks"
_FIELDS = ("at", "actor", "action", "entity", "entity_id", "before", "after", "reason")


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode


def _iso(at: dt.datetime) -> str:
    """UTC with microseconds and a Z; a naive value is already UTC (as stored)."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds") + "Z"


def canonical(seq: int, prev_hash: str, ev: dict[str, Any]) -> bytes:
    """The bytes an event's hash covers (format 1; never change it, add a format 2 instead).

    A JSON array in a fixed order, ASCII only, no whitespace, object keys sorted; `at` in UTC with
    microseconds. `before`/`after` are the JSON values as they read back from the database."""
    return _ENCODE(
        [FORMAT, seq, prev_hash, _iso(ev["at"]), ev["actor"], ev["action"], ev["entity"],
         ev["entity_id"], ev["before"], ev["after"], ev["reason"]]).encode("ascii")


def event_hash(seq: int, prev_hash: str, ev: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(seq, prev_hash, ev)).hexdigest()


def _json(value: Any) -> Any:
    """The value as it will read back from a JSON column (tuples become lists, keys strings)."""
    return None if value is None else json.loads(json.dumps(value))


def _values(actor: str, action: str, entity: str, entity_id: str | int,
            before: dict[str, Any] | None, after: dict[str, Any] | None,
            reason: str | None, at: Any = None) -> dict[str, Any]:
    return {"at": at or utcnow(), "actor": actor, "action": action, "entity": entity,
            "entity_id": str(entity_id), "before": _json(before), "after": _json(after),
            "reason": reason}


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Record an event in this unit of work; it is written, chained, when the session commits
    (and dropped with it on rollback). The returned event gets its id, seq and hash then."""
    event = AuditEvent(**_values(actor, action, entity, entity_id, before, after, reason))
    _pending(session).append(event)
    return event


class _Pending:
    """An event of record_many waiting for the commit: the fields `append` reads and sets,
    without an ORM object per event (a reminder tick records thousands)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
        self.id: int | None = None
        self.seq: int | None = None
        self.prev_hash: str | None = None
        self.hash: str | None = None


def record_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Record many events at once (same fields as `record`)."""
    at = utcnow()
    pending = _pending(session)
    for e in events:
        pending.append(_Pending(_values(
            e["actor"], e["action"], e["entity"], e["entity_id"], e.get("before"),
            e.get("after"), e.get("reason"), at)))


def _pending(session: Session) -> list[Any]:
    if not session.info.get("audit_chained"):
        raise RuntimeError("audit.record needs a session from storage.db.Database")
    return session.info.setdefault(_PENDING, [])  # type: ignore[no-any-return]


def install(sessions: Any) -> None:
    """Hook the chain writer into a sessionmaker made with info={"audit_chained": True}
    (storage.db.Database does this)."""
    event.listen(sessions, "before_flush", guard_append_only)
    event.listen(sessions, "before_commit", _write_pending)
    event.listen(sessions, "after_transaction_create", _mark_savepoint)
    event.listen(sessions, "after_soft_rollback", _forget_rolled_back)
    event.listen(sessions, "after_transaction_end", _end)


def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(session.info.get(_PENDING, []))


def _forget_rolled_back(session: Session, previous: SessionTransaction) -> None:
    """Events recorded inside a rolled-back savepoint (or transaction) never happened."""
    marks = session.info.setdefault(_MARKS, {})
    if previous.nested:
        keep = marks.pop(id(previous), None)
        if keep is not None:
            del session.info.get(_PENDING, [])[keep:]


def _end(session: Session, transaction: SessionTransaction) -> None:
    """Whatever was not written when the outermost transaction ends is dropped with it."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)


def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint is being released: the outer commit writes the events
    events = session.info.pop(_PENDING, None)
    session.info.pop(_MARKS, None)
    if not events:
        return
    session.flush()  # every other row lock of this transaction is taken before the chain's
    append(session.connection(), events)


def append(conn: Connection, events: list[Any]) -> None:
    """Chain and insert events in this transaction, under the chain-head lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
    elif not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite: take the write lock before reading the head
    head = conn.execute(select(AuditEvent.seq, AuditEvent.hash)
                        .order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    rows = []
    for ev in events:
        seq += 1
        values = {f: getattr(ev, f) for f in _FIELDS}
        ev.seq, ev.prev_hash, ev.hash = seq, prev, event_hash(seq, prev, values)
        prev = ev.hash
        rows.append({**values, "seq": ev.seq, "prev_hash": ev.prev_hash, "hash": ev.hash})
    # many rows: COPY on PostgreSQL, else one executemany (RETURNING is slow on both drivers);
    # then the ids read back by seq: the chain-head lock is held, nobody else writes these seqs
    if worth_copying(conn, rows):
        copy_rows(conn, AuditEvent.__table__, rows)  # type: ignore[arg-type]
    else:
        conn.execute(insert(AuditEvent), rows)
    ids = conn.execute(select(AuditEvent.id).where(
        AuditEvent.seq.between(events[0].seq, events[-1].seq))
        .order_by(AuditEvent.seq)).scalars().all()
    for ev, id_ in zip(events, ids, strict=True):
        ev.id = id_


def history(session: Session, entity: str, entity_id: str | int) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id == str(entity_id))
        .order_by(AuditEvent.id)
    )
    return list(session.scalars(stmt))


def guard_append_only(session: Session, _flush_context: Any, _instances: Any) -> None:
    """before_flush hook: refuse any UPDATE or DELETE of an audit event or a signature."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise PermissionError("audit events are append-only; record a correction instead")
        if isinstance(obj, DecisionSignature) and (obj in session.deleted
                                                   or session.is_modified(obj)):
            raise PermissionError("signatures are append-only; sign a new decision instead")


# ----- verification -----

@dataclass(frozen=True)
class Verdict:
    events: int
    last: dict[str, Any] | None  # id, seq, at, hash of the last good event
    broken: dict[str, Any] | None = None  # id, seq, at, problem of the first bad one

    @property
    def intact(self) -> bool:
        return self.broken is None


def chain_rows(conn: Connection, batch: int = 10_000) -> Iterator[Any]:
    """Every event in chain order, streamed (server-side cursor on PostgreSQL): id, seq,
    prev_hash, hash, then the hashed fields (`at` as stored, naive UTC; before/after as JSON text,
    parsed by `verify`: a third faster than the driver's JSON loader)."""
    cols = [AuditEvent.id, AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash,
            type_coerce(AuditEvent.at, DateTime()), AuditEvent.actor, AuditEvent.action,
            AuditEvent.entity, AuditEvent.entity_id, cast(AuditEvent.before, Text),
            cast(AuditEvent.after, Text), AuditEvent.reason]
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(
        select(*cols).order_by(AuditEvent.seq, AuditEvent.id))
    for part in result.partitions():
        yield from part


def verify(rows: Iterable[Any], anchors: Iterable[str] = ()) -> tuple[Verdict, set[str]]:
    """Walk the chain; stop at the first broken link. Returns the verdict and the anchors (hash
    prefixes recorded earlier) that were not found in the intact part of the chain."""
    missing = {a.lower() for a in anchors}
    n, prev_hash, prev_seq, last = 0, GENESIS, 0, None
    sha256, encode, loads = hashlib.sha256, _ENCODE, json.loads
    for row in rows:
        id_, seq, row_prev, row_hash, at, actor, action, entity, entity_id, before, after, reason = row
        before = None if before is None else loads(before)
        after = None if after is None else loads(after)
        problem = None
        if seq is None or row_hash is None:
            problem = "it has no hash (written around the app)"
        elif seq != prev_seq + 1:
            problem = (f"its predecessor (seq {prev_seq + 1}) is missing" if seq > prev_seq + 1
                       else f"seq {seq} appears twice or out of order")
        elif row_prev != prev_hash:
            problem = ("it does not follow the event before it "
                       "(prev_hash differs: reordered or replaced predecessor)")
        elif sha256(encode([FORMAT, seq, row_prev, _iso(at), actor, action, entity, entity_id,
                            before, after, reason]).encode("ascii")).hexdigest() != row_hash:
            problem = "its content was changed after it was written (hash mismatch)"
        if problem is not None:
            return Verdict(n, last, {"id": id_, "seq": seq, "at": _aware(at), "problem": problem}), missing
        if missing:
            missing = {a for a in missing if not row_hash.startswith(a)}
        n, prev_hash, prev_seq, last = n + 1, row_hash, seq, (id_, seq, at, row_hash)
    if last is None:
        return Verdict(n, None), missing
    return Verdict(n, {"id": last[0], "seq": last[1], "at": _aware(last[2]), "hash": last[3]}), missing


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
