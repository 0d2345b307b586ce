"""Decisions on referrals, their signatures (append-only), delegations and escalations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import DecisionSignature, Delegation, Referral, ReferralDecision


def add_decision(session: Session, **fields: object) -> ReferralDecision:
    row = ReferralDecision(**fields)
    session.add(row)
    session.flush()
    return row


def decisions_of(session: Session, referral_id: int) -> list[ReferralDecision]:
    return list(session.scalars(select(ReferralDecision)
                                .where(ReferralDecision.referral_id == referral_id)
                                .order_by(ReferralDecision.id)))


def add_signature(session: Session, **fields: object) -> DecisionSignature:
    row = DecisionSignature(**fields)
    session.add(row)
    session.flush()
    return row


def signatures_of(session: Session, referral_id: int) -> dict[int, DecisionSignature]:
    """decision id → its signature."""
    rows = session.scalars(select(DecisionSignature)
                           .where(DecisionSignature.referral_id == referral_id))
    return {r.decision_id: r for r in rows}


def by_public_id(session: Session, public_id: str) -> Referral | None:
    return session.scalars(select(Referral).where(Referral.public_id == public_id)).first()


def set_public_id(session: Session, referral_id: int, public_id: str) -> bool:
    """Give the referral its opaque id unless it has one already."""
    res = session.execute(update(Referral)
                          .where(Referral.id == referral_id, Referral.public_id.is_(None))
                          .values(public_id=public_id)
                          .execution_options(synchronize_session=False))
    return (res.rowcount or 0) == 1  # type: ignore[attr-defined]


# ----- delegations ---------------------------------------------------------------------------

def add_delegation(session: Session, **fields: object) -> Delegation:
    row = Delegation(**fields)
    session.add(row)
    session.flush()
    return row


def _active(now: dt.datetime):  # type: ignore[no-untyped-def]
    return (Delegation.cancelled_at.is_(None), Delegation.starts_at <= now, Delegation.ends_at > now)


def acting_for(session: Session, study_id: int, delegate: str, now: dt.datetime) -> list[Delegation]:
    """The delegations in force now that let `delegate` stand in for someone in the study."""
    return list(session.scalars(select(Delegation)
                                .where(Delegation.study_id == study_id,
                                       Delegation.delegate == delegate, *_active(now))
                                .order_by(Delegation.id)))


def delegates_of(session: Session, study_id: int, approver: str, now: dt.datetime) -> list[Delegation]:
    return list(session.scalars(select(Delegation)
                                .where(Delegation.study_id == study_id,
                                       Delegation.approver == approver, *_active(now))
                                .order_by(Delegation.id)))


def involving(session: Session, user_id: str, now: dt.datetime) -> list[Delegation]:
    """Delegations in force given by or to the user."""
    return list(session.scalars(select(Delegation)
                                .where((Delegation.approver == user_id)
                                       | (Delegation.delegate == user_id), *_active(now))
                                .order_by(Delegation.ends_at, Delegation.id)))


def cancel_given(session: Session, approver: str, now: dt.datetime) -> list[Delegation]:
    rows = list(session.scalars(select(Delegation)
                                .where(Delegation.approver == approver, *_active(now))))
    for r in rows:
        r.cancelled_at = now
    session.flush()
    return rows


# ----- escalation ----------------------------------------------------------------------------

def pending_since(session: Session, study_id: int, before: dt.datetime) -> list[Referral]:
    """Referrals of the study pending approval since before `before`, not escalated yet."""
    return list(session.scalars(select(Referral)
                                .where(Referral.study_id == study_id,
                                       Referral.state == "pending_approval",
                                       Referral.escalated_at.is_(None),
                                       Referral.created_at <= before)
                                .order_by(Referral.id)))


def mark_escalated(session: Session, referral_id: int, now: dt.datetime) -> bool:
    """Claim the escalation of one referral (exactly once, whoever runs the job)."""
    res = session.execute(update(Referral)
                          .where(Referral.id == referral_id, Referral.escalated_at.is_(None))
                          .values(escalated_at=now)
                          .execution_options(synchronize_session=False))
    return (res.rowcount or 0) == 1  # type: ignore[attr-defined]
