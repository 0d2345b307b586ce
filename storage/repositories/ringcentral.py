"""RingCentral rows: extensions and their sync state, synced call records, RingOuts, texts,
opt-outs and the webhook subscription."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Integer, String, any_, bindparam, delete, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import savepoint
from storage.models import (
    Callback,
    Candidate,
    Member,
    PrescreenCall,
    RcCallRecord,
    RcExtension,
    RcRingOut,
    RcSubscription,
    TextMessage,
    TextOptOut,
)
from storage.vocabulary import CALLBACK_OPEN_STATUSES

CHUNK = 500


def _chunks(values: Sequence[Any]) -> list[list[Any]]:
    return [list(values[i:i + CHUNK]) for i in range(0, len(values), CHUNK)]


def _among_ids(session: Session, column: Any, values: list[int]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(Integer())))
    return column.in_(values)


def _among(session: Session, column: Any, values: list[str]) -> Any:
    """`column IN values`; on PostgreSQL `= ANY(array)`, one parameter whatever the count (a
    long IN list is re-parsed by the driver on every query)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(String())))
    return column.in_(values)


# ----- extensions -----


def extension_row(session: Session, member_id: int) -> RcExtension | None:
    return session.get(RcExtension, member_id)


def set_explicit(session: Session, member_id: int, explicit: str | None) -> None:
    """The extension named in the studies file; a change is matched again at the next sync."""
    row = session.get(RcExtension, member_id)
    if row is None:
        session.add(RcExtension(member_id=member_id, explicit=explicit))
    elif row.explicit != explicit:
        row.explicit, row.extension_id, row.sync_token = explicit, None, None
    session.flush()


def set_extension(session: Session, member_id: int, extension_id: str | None) -> RcExtension:
    row = session.get(RcExtension, member_id)
    if row is None:
        row = RcExtension(member_id=member_id)
        session.add(row)
    if row.extension_id != extension_id:
        row.extension_id = extension_id
        row.sync_token = None  # another extension: its log starts with a full sync
    session.flush()
    return row


def active_members(session: Session) -> list[tuple[Member, RcExtension | None]]:
    stmt = (select(Member, RcExtension).outerjoin(RcExtension, RcExtension.member_id == Member.id)
            .where(Member.active.is_(True)).order_by(Member.id))
    return [(m, e) for m, e in session.execute(stmt)]


def member(session: Session, member_id: int) -> Member | None:
    return session.get(Member, member_id)


def save_sync(session: Session, member_id: int, sync_token: str, now: dt.datetime) -> None:
    row = session.get(RcExtension, member_id)
    if row is not None:
        row.sync_token, row.synced_at, row.last_error = sync_token, now, None


def save_error(session: Session, member_id: int, message: str) -> None:
    row = session.get(RcExtension, member_id)
    if row is not None:
        row.last_error = message[:300]


def matched(session: Session) -> list[tuple[RcExtension, Member]]:
    stmt = (select(RcExtension, Member).join(Member, Member.id == RcExtension.member_id)
            .where(RcExtension.extension_id.is_not(None), Member.active.is_(True))
            .order_by(RcExtension.member_id))
    return [(e, m) for e, m in session.execute(stmt)]


# ----- call records -----


def candidates_by_phone_index(session: Session, indexes: Iterable[str]) -> dict[str, list[Candidate]]:
    out: dict[str, list[Candidate]] = {}
    for chunk in _chunks(sorted(set(indexes))):
        stmt = select(Candidate).where(_among(session, Candidate.phone_index, chunk))
        for cand in session.scalars(stmt):
            out.setdefault(cand.phone_index, []).append(cand)
    return out


def known_records(session: Session, record_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(record_ids)):
        found.update(session.scalars(select(RcCallRecord.record_id)
                                     .where(_among(session, RcCallRecord.record_id, chunk))))
    return found


def add_records(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        session.execute(insert(RcCallRecord), rows)
        return
    # One short statement, executed many times (psycopg pipelines it): the multi-row VALUES text
    # SQLAlchemy would build is too long for psycopg's statement cache and is parsed again on
    # every call, which was the largest part of a first sync's time on PostgreSQL.
    cols = list(rows[0])
    sql = (f"INSERT INTO {RcCallRecord.__tablename__} ({', '.join(cols)}) "
           f"VALUES ({', '.join(f'%({c})s' for c in cols)})")
    conn.exec_driver_sql(sql, [{c: _naive_utc(r[c]) for c in cols} for r in rows])


def _naive_utc(value: Any) -> Any:
    """As UTCDateTime stores instants (the driver call bypasses column types)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value






def placed_ringouts(session: Session, candidate_ids: Sequence[int], member_id: int,
                    lo: dt.datetime, hi: dt.datetime) -> dict[int, list[RcRingOut]]:
    out: dict[int, list[RcRingOut]] = {}
    for i in range(0, len(candidate_ids), 500):
        for row in session.scalars(select(RcRingOut).where(
                RcRingOut.candidate_id.in_(list(candidate_ids[i:i + 500])),
                RcRingOut.member_id == member_id, RcRingOut.status == "placed",
                RcRingOut.placed_at >= lo, RcRingOut.placed_at <= hi)):
            out.setdefault(row.candidate_id, []).append(row)
    return out


def unclaimed_hand_logged(session: Session, candidate_ids: Sequence[int], member_id: int,
                          lo: dt.datetime, hi: dt.datetime) -> dict[int, list[PrescreenCall]]:
    """Calls the coordinator logged by hand in [lo, hi] that no synced record claims yet."""
    out: dict[int, list[PrescreenCall]] = {}
    for i in range(0, len(candidate_ids), 500):
        chunk = list(candidate_ids[i:i + 500])
        claimed = select(RcCallRecord.call_id).where(RcCallRecord.call_id.is_not(None),
                                                     RcCallRecord.candidate_id.in_(chunk))
        for call in session.scalars(select(PrescreenCall).where(
                PrescreenCall.candidate_id.in_(chunk), PrescreenCall.coordinator_id == member_id,
                PrescreenCall.called_at >= lo, PrescreenCall.called_at <= hi,
                PrescreenCall.id.not_in(claimed)).order_by(PrescreenCall.called_at)):
            out.setdefault(call.candidate_id, []).append(call)
    return out


def link_logged_connected(session: Session, since: dt.datetime, within: dt.timedelta) -> int:
    """Connected calls whose outcome the coordinator has since logged (the DM's Log call): the
    logged call is that call's attempt. Two queries whatever the number. Returns how many."""
    records = list(session.scalars(select(RcCallRecord).where(
        RcCallRecord.connected.is_(True), RcCallRecord.call_id.is_(None),
        RcCallRecord.started_at >= since).order_by(RcCallRecord.started_at)))
    if not records:
        return 0
    cand_ids = sorted({r.candidate_id for r in records})
    claimed = select(RcCallRecord.call_id).where(RcCallRecord.call_id.is_not(None),
                                                 RcCallRecord.started_at >= since - within)
    calls: dict[tuple[int, int], list[PrescreenCall]] = {}
    for chunk in _chunks(cand_ids):
        for call in session.scalars(select(PrescreenCall).where(
                _among_ids(session, PrescreenCall.candidate_id, chunk),
                PrescreenCall.called_at >= since, PrescreenCall.id.not_in(claimed))
                .order_by(PrescreenCall.called_at)):
            calls.setdefault((call.candidate_id, call.coordinator_id), []).append(call)
    linked = 0
    for rec in records:
        options = calls.get((rec.candidate_id, rec.member_id), [])
        call = next((c for c in options if rec.started_at <= c.called_at <= rec.started_at + within),
                    None)
        if call is not None:
            options.remove(call)
            rec.call_id = call.id
            linked += 1
    return linked


def with_open_callbacks(session: Session, candidate_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for i in range(0, len(candidate_ids), 500):
        found.update(session.scalars(select(Callback.candidate_id).where(
            Callback.candidate_id.in_(list(candidate_ids[i:i + 500])),
            Callback.status.in_(CALLBACK_OPEN_STATUSES))))
    return found






# ----- RingOuts -----


def add_ringout(session: Session, **fields: Any) -> RcRingOut:
    row = RcRingOut(**fields)
    session.add(row)
    session.flush()
    return row


def set_ringout_status(session: Session, row_id: int, status: str, ringout_id: str | None) -> None:
    row = session.get(RcRingOut, row_id)
    if row is not None:
        row.status = status
        row.ringout_id = ringout_id




def ringout_times_since(session: Session, candidate_id: int, since: dt.datetime) -> list[dt.datetime]:
    stmt = select(RcRingOut.placed_at).where(RcRingOut.candidate_id == candidate_id,
                                             RcRingOut.placed_at > since,
                                             RcRingOut.status.in_(("placing", "placed")))
    return list(session.scalars(stmt))


def synced_times_since(session: Session, candidate_id: int, since: dt.datetime) -> list[dt.datetime]:
    """Calls RingCentral knows of that are not an attempt (connected, not yet logged)."""
    stmt = select(RcCallRecord.started_at).where(RcCallRecord.candidate_id == candidate_id,
                                                 RcCallRecord.started_at > since,
                                                 RcCallRecord.call_id.is_(None))
    return list(session.scalars(stmt))


# ----- texts -----


def opted_out(session: Session, indexes: Sequence[str]) -> TextOptOut | None:
    return session.scalars(select(TextOptOut).where(TextOptOut.phone_index.in_(list(indexes)))).first()


def opt_in(session: Session, indexes: Sequence[str]) -> bool:
    """Lift the number's opt-out (under any of its keys); False when it had none."""
    gone = session.execute(delete(TextOptOut).where(TextOptOut.phone_index.in_(list(indexes))))
    session.flush()
    return bool(gone.rowcount)  # type: ignore[attr-defined]


def opt_out(session: Session, phone_index: str, keyword: str, at: dt.datetime) -> bool:
    """Record the opt-out; False when the number had already opted out."""
    if session.get(TextOptOut, phone_index) is not None:
        return False
    session.add(TextOptOut(phone_index=phone_index, keyword=keyword, at=at))
    session.flush()
    return True


def text_by_rc_id(session: Session, rc_message_id: str) -> TextMessage | None:
    return session.scalars(select(TextMessage).where(TextMessage.rc_message_id == rc_message_id)).first()


def add_text(session: Session, **fields: Any) -> TextMessage:
    row = TextMessage(**fields)
    session.add(row)
    session.flush()
    return row


def add_inbound_text(session: Session, **fields: Any) -> TextMessage | None:
    """The inbound message, or None when its RingCentral id is stored already (the same
    notification delivered twice at the same moment: the other delivery handles it)."""
    try:
        with savepoint(session):
            return add_text(session, **fields)
    except IntegrityError:
        return None


def add_calls(session: Session, calls: Sequence[PrescreenCall]) -> None:
    """Store attempts made from synced call records; they have their ids afterwards."""
    session.add_all(calls)
    session.flush()


def texts_for(session: Session, candidate_id: int) -> list[TextMessage]:
    return list(session.scalars(select(TextMessage).where(TextMessage.candidate_id == candidate_id)
                                .order_by(TextMessage.at, TextMessage.id)))


# ----- subscription -----


def subscription(session: Session) -> RcSubscription | None:
    return session.scalars(select(RcSubscription).order_by(RcSubscription.created_at.desc())).first()


def save_subscription(session: Session, sub_id: str, address: str, expires_at: dt.datetime,
                      now: dt.datetime) -> None:
    session.execute(delete(RcSubscription).where(RcSubscription.id != sub_id))
    row = session.get(RcSubscription, sub_id)
    if row is None:
        session.add(RcSubscription(id=sub_id, address=address, expires_at=expires_at, created_at=now))
    else:
        row.expires_at = expires_at
    session.flush()
