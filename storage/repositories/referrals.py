"""Referrals and their events."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage import kpi_marks
from storage.db import begin_writing
from storage.models import Member, PrescreenCall, Referral, ReferralEvent


def get(session: Session, referral_id: int) -> Referral | None:
    return session.get(Referral, referral_id)


def pending(session: Session, study_ids: list[int], limit: int = 20) -> list[Referral]:
    if not study_ids:
        return []
    stmt = (select(Referral)
            .where(Referral.study_id.in_(study_ids), Referral.state == "pending_approval")
            .order_by(Referral.created_at).limit(limit))
    return list(session.scalars(stmt))


def compare_and_set(session: Session, referral_id: int, expected_version: int, **values: object) -> bool:
    """Atomically apply `values` only if nobody changed the referral since `expected_version`."""
    if set(values) & {"site_id", "visit_date", "created_at", "candidate_id"}:
        kpi_marks.mark_referral(session, referral_id)
    res = session.execute(
        update(Referral)
        .where(Referral.id == referral_id, Referral.version == expected_version)
        .values(version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return (res.rowcount or 0) == 1  # type: ignore[attr-defined]


def counts_by_state(session: Session, study_id: int) -> dict[str, int]:
    stmt = (select(Referral.state, func.count()).where(Referral.study_id == study_id)
            .group_by(Referral.state))
    return {state: n for state, n in session.execute(stmt)}


def list_for_study(session: Session, study_id: int, state: str | None, limit: int = 40) -> list[Referral]:
    stmt = select(Referral).where(Referral.study_id == study_id)
    if state:
        stmt = stmt.where(Referral.state == state)
    return list(session.scalars(stmt.order_by(Referral.updated_at.desc()).limit(limit)))


def load(session: Session, referral_id: int, *, for_update: bool) -> Referral | None:
    """The referral, locked until commit when `for_update`: its row on PostgreSQL, the write
    lock on SQLite (which has no row locks), so that two deciders never read it half-changed."""
    stmt = select(Referral).where(Referral.id == referral_id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    elif for_update:
        begin_writing(session)
    return session.scalars(stmt).first()


def create(session: Session, **fields: object) -> Referral:
    referral = Referral(**fields)
    session.add(referral)
    session.flush()
    session.refresh(referral)
    return referral


def add_event(session: Session, *, referral_id: int, from_state: str | None, to_state: str,
              actor: str, at: dt.datetime, reason: str | None) -> ReferralEvent:
    ev = ReferralEvent(referral_id=referral_id, from_state=from_state, to_state=to_state,
                       actor=actor, reason=reason, at=at)
    session.add(ev)
    session.flush()
    return ev


def last_event(session: Session, referral_id: int) -> ReferralEvent | None:
    return session.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == referral_id)
                           .order_by(ReferralEvent.id.desc())).first()


def call_of(session: Session, referral: Referral) -> PrescreenCall | None:
    return session.get(PrescreenCall, referral.call_id) if referral.call_id else None


def creator_of(session: Session, referral: Referral) -> Member | None:
    return session.get(Member, referral.created_by_id) if referral.created_by_id else None
