"""Reads for stage-SLA detection, and the exactly-once notice claims."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, joinedload

from storage.models import Candidate, Referral, ReferralEvent, SlaNotice

UNCONTACTED_STATUSES = ("new", "needs_call")


def _fully_noticed(stage: str, entity: str, id_column: Any) -> Any:
    """True when the item already had its last (2x) notice: nothing more to send for it."""
    return (select(SlaNotice.id).where(SlaNotice.stage == stage, SlaNotice.entity == entity,
                                       SlaNotice.entity_id == id_column, SlaNotice.level == "2x")
            .exists())


def uncontacted_since(session: Session, study_id: int, before: dt.datetime, *,
                      pending_only: bool = False) -> list[Candidate]:
    """Leads created before `before` that nobody has tried to call yet (with `pending_only`,
    without those whose notices are all given)."""
    extra = [~_fully_noticed("first_attempt", "candidate", Candidate.id)] if pending_only else []
    stmt = (select(Candidate)
            .where(Candidate.study_id == study_id, Candidate.status.in_(UNCONTACTED_STATUSES),
                   Candidate.first_called_at.is_(None), Candidate.do_not_call.is_(False),
                   Candidate.created_at <= before, *extra)
            .options(joinedload(Candidate.owner))
            .order_by(Candidate.created_at, Candidate.id))
    return list(session.scalars(stmt).unique())


def referrals_in_state(session: Session, study_id: int, state: str, before: dt.datetime, *,
                       stage: str | None = None) -> list[tuple[Referral, dt.datetime]]:
    """Referrals now in `state` with when they entered it (the latest event into it, else when
    the referral was created), entered before `before`; with `stage`, without those whose
    notices for that stage are all given."""
    entered = (select(func.max(ReferralEvent.at)).where(ReferralEvent.referral_id == Referral.id,
                                                        ReferralEvent.to_state == state)
               .correlate(Referral).scalar_subquery())
    since = func.coalesce(entered, Referral.created_at)
    extra = [~_fully_noticed(stage, "referral", Referral.id)] if stage else []
    stmt = (select(Referral, since)
            .where(Referral.study_id == study_id, Referral.state == state, since <= before, *extra)
            .options(joinedload(Referral.candidate).joinedload(Candidate.owner),
                     joinedload(Referral.site))
            .order_by(since, Referral.id))
    return [(r, at) for r, at in session.execute(stmt).unique()]


def claim_notices(session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime) -> set[str]:
    """Insert notice keys; returns the keys this caller inserted (others already existed)."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    values = [{**r, "at": now} for r in rows]
    stmt = (insert_fn(SlaNotice).on_conflict_do_nothing(index_elements=["key"])
            .returning(SlaNotice.key))
    won: set[str] = set()
    for chunk in range(0, len(values), 500):
        won |= set(session.scalars(stmt, values[chunk:chunk + 500]))
    return won


def existing_keys(session: Session, keys: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for chunk in range(0, len(keys), 500):
        out |= set(session.scalars(select(SlaNotice.key).where(SlaNotice.key.in_(keys[chunk:chunk + 500]))))
    return out
