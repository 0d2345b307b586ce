"""Referrals and their events."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import Referral


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
