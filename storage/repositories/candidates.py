"""Candidates, their calls, and the reference-code sequence."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage import kpi_marks
from storage.db import begin_writing, savepoint
from storage.models import Callback, Candidate, PrescreenCall, Referral, Study, utcnow
from storage.vocabulary import CALLBACK_OPEN_STATUSES, REFERRAL_OPEN_STATES, UNANSWERED_OUTCOMES


def ref_code(study_key: str, seq: int) -> str:
    return f"{study_key}-{seq:04d}"


def by_ref(session: Session, ref: str, *, for_update: bool = False) -> Candidate | None:
    stmt = select(Candidate).where(Candidate.ref_code == ref.upper())
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _any(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def by_dedupe_index(session: Session, study_id: int, dedupe_index: str | list[str]) -> Candidate | None:
    """`dedupe_index` may be the index under each configured key (PHICipher.indexes)."""
    stmt = select(Candidate).where(Candidate.study_id == study_id,
                                   Candidate.dedupe_index.in_(_any(dedupe_index)))
    return session.scalars(stmt.order_by(Candidate.id)).first()


def search(session: Session, study_ids: list[int], *, phone_index: str | list[str] | None = None,
           name_index: str | list[str] | None = None, limit: int = 20) -> list[Candidate]:
    if not study_ids or not (phone_index or name_index):
        return []
    stmt = select(Candidate).where(Candidate.study_id.in_(study_ids))
    if phone_index:
        stmt = stmt.where(Candidate.phone_index.in_(_any(phone_index)))
    if name_index:
        stmt = stmt.where(Candidate.name_index.in_(_any(name_index)))
    return list(session.scalars(stmt.order_by(Candidate.ref_code).limit(limit)))


SEQ_LOCK = 21  # pg_advisory_xact_lock(SEQ_LOCK, study id): the study's reference-code sequence


def _lock_sequence(session: Session, study_id: int) -> None:
    """Creators of one study's candidates take their numbers one at a time, until commit, on
    PostgreSQL (SQLite's write lock already does this). Without it, fifty coordinators adding
    candidates at once all read the same max(seq), and the unlucky ones ran out of retries."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k, :sid)"),
                        {"k": SEQ_LOCK, "sid": study_id})


def create(session: Session, study_id: int, study_key: str, fields: dict[str, Any]) -> Candidate:
    """Insert with the next per-study sequence number (taken under the study's sequence lock;
    a retry remains for a bulk import that took the number meanwhile)."""
    _lock_sequence(session, study_id)
    for _ in range(20):
        seq = (session.scalar(select(func.max(Candidate.seq)).where(Candidate.study_id == study_id))
               or 0) + 1
        cand = Candidate(study_id=study_id, seq=seq, ref_code=ref_code(study_key, seq), **fields)
        try:
            with savepoint(session):
                session.add(cand)
                session.flush()
        except IntegrityError:
            continue
        return cand
    raise RuntimeError("could not allocate a reference code")


def add_call(session: Session, **fields: Any) -> PrescreenCall:
    call = PrescreenCall(**fields)
    session.add(call)
    session.flush()
    return call


def call_by_key(session: Session, key: str) -> PrescreenCall | None:
    return session.scalars(select(PrescreenCall).where(PrescreenCall.idempotency_key == key)).first()


def unanswered_streak(session: Session, candidate_id: int) -> list[PrescreenCall]:
    """The calls since the candidate was last reached (newest first)."""
    calls = session.scalars(
        select(PrescreenCall).where(PrescreenCall.candidate_id == candidate_id)
        .order_by(PrescreenCall.called_at.desc(), PrescreenCall.id.desc())
    )
    streak: list[PrescreenCall] = []
    for call in calls:
        if call.outcome not in UNANSWERED_OUTCOMES:
            break
        streak.append(call)
    return streak


def next_callback(session: Session, candidate_id: int) -> Callback | None:
    stmt = (select(Callback)
            .where(Callback.candidate_id == candidate_id, Callback.status.in_(CALLBACK_OPEN_STATUSES))
            .order_by(Callback.due_at))
    return session.scalars(stmt).first()


def latest_referral(session: Session, candidate_id: int) -> Referral | None:
    stmt = select(Referral).where(Referral.candidate_id == candidate_id).order_by(Referral.id.desc())
    return session.scalars(stmt).first()


def open_referral(session: Session, candidate_id: int) -> Referral | None:
    stmt = (select(Referral)
            .where(Referral.candidate_id == candidate_id, Referral.state.in_(REFERRAL_OPEN_STATES))
            .order_by(Referral.id.desc()))
    return session.scalars(stmt).first()


def needing_attempt(session: Session, owner_member_id: int, study_ids: list[int],
                    limit: int = 20) -> list[Candidate]:
    """Candidates this coordinator called last and who still need another attempt."""
    stmt = (select(Candidate)
            .where(Candidate.study_id.in_(study_ids), Candidate.owner_id == owner_member_id,
                   Candidate.status.in_(("needs_call", "considering")),
                   Candidate.do_not_call.is_(False))
            .order_by(Candidate.last_called_at.asc().nulls_first(), Candidate.id)
            .limit(limit))
    return list(session.scalars(stmt))


def callbacks_between(session: Session, owner_member_id: int, start: dt.datetime,
                      end: dt.datetime, limit: int = 30) -> list[Callback]:
    stmt = (select(Callback)
            .where(Callback.owner_id == owner_member_id,
                   Callback.status.in_(CALLBACK_OPEN_STATUSES),
                   Callback.due_at < end, Callback.due_at >= start)
            .order_by(Callback.due_at).limit(limit))
    return list(session.scalars(stmt))


def rows_after(session: Session, model: type, after_id: int, limit: int) -> list:  # type: ignore[type-arg]
    """A batch of rows of `model` by id, for jobs that walk a whole table (key rotation)."""
    stmt = select(model).where(model.id > after_id).order_by(model.id).limit(limit)  # type: ignore[attr-defined]
    return list(session.scalars(stmt))


# ----- lead intake (bulk) -----

def lock_study(session: Session, study_id: int) -> None:
    """Start a writing transaction that serialises lead intake per study, so two imports (or an
    import and the lead form) cannot both miss each other's duplicates. Call before the
    session's first write.

    PostgreSQL: a row lock on the study. SQLite: the write lock at once (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "sqlite":
        begin_writing(session)
        return
    session.execute(select(Study.id).where(Study.id == study_id).with_for_update())


def prefer_indexes(session: Session) -> None:
    """For a bulk import's transaction on PostgreSQL: rows it inserts have no planner statistics
    yet (ANALYZE runs after commit), so the planner would soon choose sequential scans for
    phone_matches' IN list on the growing table; this transaction only ever wants the indexes."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_seqscan = off"))
    elif conn.dialect.name == "sqlite":
        # the default 2 MB page cache thrashes on the candidates indexes of a large import
        conn.exec_driver_sql("PRAGMA cache_size = -65536")


def phone_matches(session: Session, study_id: int,
                  phone_indexes: list[str]) -> dict[str, tuple[str, int, str | None]]:
    """phone_index → (ref_code, seq, dedupe_index) of the study's candidates with those phones.

    Filters on phone_index alone (the study in Python): with the study in the WHERE clause the
    planner scans the whole study by a study index while an import grows it, which made a
    100k-row import quadratic on PostgreSQL."""
    if not phone_indexes:
        return {}
    stmt = (select(Candidate.phone_index, Candidate.ref_code, Candidate.seq, Candidate.dedupe_index,
                   Candidate.study_id)
            .where(Candidate.phone_index.in_(set(phone_indexes)))
            .order_by(Candidate.seq.desc()))
    return {p: (ref, seq, d) for p, ref, seq, d, sid in session.execute(stmt) if sid == study_id}


def do_not_call_phones(session: Session, phone_indexes: list[str]) -> dict[str, str]:
    """phone_index → ref_code of candidates in ANY study flagged do-not-call with those phones."""
    if not phone_indexes:
        return {}
    stmt = (select(Candidate.phone_index, Candidate.ref_code)
            .where(Candidate.phone_index.in_(set(phone_indexes)),
                   Candidate.do_not_call.is_(True)))
    return {p: ref for p, ref in session.execute(stmt)}


def insert_many(session: Session, study_id: int, study_key: str,
                rows: list[dict[str, Any]]) -> int:
    """Insert candidates with consecutive sequence numbers; return the first. A concurrent single
    create that took one of the numbers makes this batch retry with the next free block."""
    _lock_sequence(session, study_id)
    for _ in range(20):
        first = (session.scalar(select(func.max(Candidate.seq))
                                .where(Candidate.study_id == study_id)) or 0) + 1
        now = utcnow()
        values = [{"created_at": now, **row, "study_id": study_id, "seq": first + i,
                   "ref_code": ref_code(study_key, first + i)} for i, row in enumerate(rows)]
        try:
            with savepoint(session):
                if session.connection().dialect.name == "postgresql":
                    _copy(session, values)
                else:  # Core, not ORM, insert: a third less time per row
                    session.execute(insert(Candidate.__table__), values)
                kpi_marks.mark(session, {(study_id, v["created_at"]) for v in values})
        except IntegrityError:
            continue
        return first
    raise RuntimeError("could not allocate reference codes")


def _copy(session: Session, values: list[dict[str, Any]]) -> None:
    """COPY … FROM STDIN on PostgreSQL: about five times faster than INSERTs for a batch."""
    import psycopg  # only on PostgreSQL: a SQLite deployment never loads the driver

    columns = list(values[0])
    dbapi = session.connection().connection.dbapi_connection
    try:
        with dbapi.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                f"COPY candidates ({', '.join(columns)}) FROM STDIN") as copy:
            for row in values:
                copy.write_row([_naive_utc(row[c]) for c in columns])
    except psycopg.errors.UniqueViolation as exc:
        raise IntegrityError("COPY candidates", None, exc) from exc


def _naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
