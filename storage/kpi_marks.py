"""KPI rollup marks: every change that can move a KPI figure writes (study, instant) rows in
the same transaction; the `kpis` job recomputes those study-local days (see
storage/repositories/kpi_rollups.py). ORM changes are marked by a `before_flush` hook that
storage.db.Database installs; the few bulk UPDATE/INSERT statements call `mark_*` themselves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, attributes

from storage.models import (
    Callback,
    Candidate,
    KpiMark,
    PrescreenCall,
    Referral,
    ReferralEvent,
    utcnow,
)


def mark(session: Session, pairs: Iterable[tuple[int, dt.datetime | None]]) -> None:
    """(study id, instant) pairs whose study-local days must be recomputed."""
    rows = {(sid, at) for sid, at in pairs if sid is not None and at is not None}
    if rows:
        session.execute(insert(KpiMark), [{"study_id": s, "at": at} for s, at in rows])


def mark_callbacks(session: Session, ids: Sequence[int]) -> None:
    """For bulk callback updates: their due days (call before and after a due_at change)."""
    if ids:
        mark(session, session.execute(
            select(Callback.study_id, Callback.due_at).where(Callback.id.in_(list(ids)))).all())


def mark_referral(session: Session, referral_id: int) -> None:
    """Everything a referral counts in: its creation and each of its transitions."""
    mark(session, _referral_instants(session, [referral_id]))


def _referral_instants(session: Session, referral_ids: list[int]) -> list[tuple[int, dt.datetime]]:
    if not referral_ids:
        return []
    out = list(session.execute(select(Referral.study_id, Referral.created_at)
                               .where(Referral.id.in_(referral_ids))).all())
    out += session.execute(select(Referral.study_id, ReferralEvent.at)
                           .join(Referral, Referral.id == ReferralEvent.referral_id)
                           .where(Referral.id.in_(referral_ids))).all()
    return [(s, a) for s, a in out]


def _candidate_referral_days(session: Session, candidate_ids: set[int]) -> list[tuple[int, dt.datetime]]:
    """A call moves 'days first call → referral' of the candidate's referrals."""
    if not candidate_ids:
        return []
    return [(s, a) for s, a in session.execute(
        select(Referral.study_id, Referral.created_at)
        .where(Referral.candidate_id.in_(candidate_ids)))]


def _changed(obj: Any, *names: str) -> bool:
    return any(attributes.get_history(obj, n).has_changes() for n in names)


def _values(obj: Any, name: str) -> list[Any]:
    """Current and previous value of an attribute (both days count as changed)."""
    h = attributes.get_history(obj, name)
    return [v for v in (*h.added, *h.unchanged, *h.deleted) if v is not None]


CALL_FIELDS = ("called_at", "outcome", "coordinator_id", "failed_criteria", "candidate_id",
               "study_id")
CANDIDATE_FIELDS = ("source", "created_at", "study_id")
REFERRAL_FIELDS = ("site_id", "visit_date", "created_at", "candidate_id", "study_id")
EVENT_FIELDS = ("at", "to_state", "referral_id")
CALLBACK_FIELDS = ("due_at", "status", "completed_at", "study_id")


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    pairs: list[tuple[int, dt.datetime]] = []
    candidates: set[int] = set()  # whose referrals' c2r may move
    referrals: set[int] = set()  # whose every instant may move
    now = utcnow()
    with session.no_autoflush:
        for obj in session.new:
            if isinstance(obj, PrescreenCall):
                obj.called_at = obj.called_at or now
                pairs.append((obj.study_id, obj.called_at))
                first = session.scalar(select(func.min(PrescreenCall.called_at))
                                       .where(PrescreenCall.candidate_id == obj.candidate_id))
                if first is None or obj.called_at <= first:  # a new first call (late sync)
                    candidates.add(obj.candidate_id)
            elif isinstance(obj, Candidate | Referral):
                obj.created_at = obj.created_at or now
                pairs.append((obj.study_id, obj.created_at))
            elif isinstance(obj, ReferralEvent):
                obj.at = obj.at or now
                ref = (obj.__dict__.get("referral")
                       or (session.get(Referral, obj.referral_id) if obj.referral_id else None))
                pairs.append((ref.study_id if ref else None, obj.at))  # type: ignore[arg-type]
            elif isinstance(obj, Callback):
                pairs.append((obj.study_id, obj.due_at))
        for obj in list(session.dirty) + list(session.deleted):
            deleted = obj in session.deleted
            if isinstance(obj, PrescreenCall) and (deleted or _changed(obj, *CALL_FIELDS)):
                pairs += [(s, a) for s in _values(obj, "study_id") for a in _values(obj, "called_at")]
                candidates.update(_values(obj, "candidate_id"))
            elif isinstance(obj, Candidate) and (deleted or _changed(obj, *CANDIDATE_FIELDS)):
                pairs += [(s, a) for s in _values(obj, "study_id") for a in _values(obj, "created_at")]
                pairs += session.execute(select(PrescreenCall.study_id, PrescreenCall.called_at)
                                         .where(PrescreenCall.candidate_id == obj.id)).all()
                referrals.update(session.scalars(select(Referral.id)
                                                 .where(Referral.candidate_id == obj.id)))
            elif isinstance(obj, Referral) and (deleted or _changed(obj, *REFERRAL_FIELDS)):
                pairs += [(s, a) for s in _values(obj, "study_id") for a in _values(obj, "created_at")]
                referrals.add(obj.id)
            elif isinstance(obj, ReferralEvent) and (deleted or _changed(obj, *EVENT_FIELDS)):
                for rid in _values(obj, "referral_id"):
                    study = session.scalar(select(Referral.study_id).where(Referral.id == rid))
                    pairs += [(study, a) for a in _values(obj, "at")]  # type: ignore[misc]
            elif isinstance(obj, Callback) and (deleted or _changed(obj, *CALLBACK_FIELDS)):
                pairs += [(s, a) for s in _values(obj, "study_id") for a in _values(obj, "due_at")]
        pairs += _candidate_referral_days(session, {c for c in candidates if c is not None})
        pairs += _referral_instants(session, sorted(r for r in referrals if r is not None))
        rows = {(s, a) for s, a in pairs if s is not None and a is not None}
        for s, a in rows:
            session.add(KpiMark(study_id=s, at=a))


def install(sessions: Any) -> None:
    """Hook the marks into a sessionmaker (storage.db.Database does this)."""
    event.listen(sessions, "before_flush", _before_flush)
