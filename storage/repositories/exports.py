"""Row streams for the CSV export: one SELECT per kind, read in batches (yield_per).

Windows are half-open UTC [start, end) and use the same columns as the KPIs
(storage/repositories/kpis.py), so an export's rows add up to the KPI figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from storage.models import (
    AuditEvent,
    Callback,
    Candidate,
    Member,
    PrescreenCall,
    Referral,
    ReferralEvent,
    Site,
    Study,
)

BATCH = 1000


def _stream(session: Session, stmt: Any) -> Iterator[Any]:
    yield from session.execute(stmt.execution_options(yield_per=BATCH))


def calls(session: Session, study_id: int, start: dt.datetime, end: dt.datetime) -> Iterator[Any]:
    stmt = (
        select(PrescreenCall.id, PrescreenCall.called_at, Candidate.ref_code,
               Member.slack_user_id.label("coordinator"), PrescreenCall.attempt_no,
               PrescreenCall.outcome, PrescreenCall.eligible, PrescreenCall.failed_criteria,
               Candidate.source, Candidate.name_enc, Candidate.phone_enc, Candidate.dob_enc,
               PrescreenCall.notes_enc)
        .select_from(PrescreenCall)
        .join(Candidate, Candidate.id == PrescreenCall.candidate_id)
        .join(Member, Member.id == PrescreenCall.coordinator_id)
        .where(PrescreenCall.study_id == study_id, PrescreenCall.called_at >= start,
               PrescreenCall.called_at < end)
        .order_by(PrescreenCall.called_at, PrescreenCall.id)
    )
    return _stream(session, stmt)


def referral_events(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                    ) -> Iterator[Any]:
    stmt = (
        select(ReferralEvent.at, ReferralEvent.referral_id, Candidate.ref_code,
               Site.key.label("site"), ReferralEvent.from_state, ReferralEvent.to_state,
               ReferralEvent.actor, ReferralEvent.reason, Referral.state.label("current_state"),
               Referral.created_at.label("referred_at"), Referral.visit_date, Candidate.source,
               Candidate.name_enc, Candidate.phone_enc, Candidate.dob_enc,
               Referral.reason_note_enc)
        .select_from(ReferralEvent)
        .join(Referral, Referral.id == ReferralEvent.referral_id)
        .join(Candidate, Candidate.id == Referral.candidate_id)
        .outerjoin(Site, Site.id == Referral.site_id)
        .where(Referral.study_id == study_id, ReferralEvent.at >= start, ReferralEvent.at < end)
        .order_by(ReferralEvent.at, ReferralEvent.id)
    )
    return _stream(session, stmt)


def callbacks(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
              ) -> Iterator[Any]:
    stmt = (
        select(Callback.id, Callback.due_at, Candidate.ref_code,
               Member.slack_user_id.label("owner"), Callback.kind, Callback.status,
               Callback.completed_at, Callback.escalated_at, Candidate.name_enc,
               Candidate.phone_enc)
        .select_from(Callback)
        .join(Candidate, Candidate.id == Callback.candidate_id)
        .join(Member, Member.id == Callback.owner_id)
        .where(Callback.study_id == study_id, Callback.due_at >= start, Callback.due_at < end)
        .order_by(Callback.due_at, Callback.id)
    )
    return _stream(session, stmt)


def audit(session: Session, study_id: int, start: dt.datetime, end: dt.datetime) -> Iterator[Any]:
    """Audit events about this study, its candidates, referrals, callbacks and exports."""
    key = select(Study.key).where(Study.id == study_id).scalar_subquery()
    refs = select(Candidate.ref_code).where(Candidate.study_id == study_id)
    referral_ids = select(cast(Referral.id, String)).where(Referral.study_id == study_id)
    callback_ids = select(cast(Callback.id, String)).where(Callback.study_id == study_id)
    stmt = (
        select(AuditEvent.at, AuditEvent.actor, AuditEvent.action, AuditEvent.entity,
               AuditEvent.entity_id, AuditEvent.reason, AuditEvent.before, AuditEvent.after,
               AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash)
        .where(AuditEvent.at >= start, AuditEvent.at < end,
               or_((AuditEvent.entity == "candidate") & AuditEvent.entity_id.in_(refs),
                   (AuditEvent.entity == "referral") & AuditEvent.entity_id.in_(referral_ids),
                   (AuditEvent.entity == "callback") & AuditEvent.entity_id.in_(callback_ids),
                   (AuditEvent.entity.in_(("study", "export"))) & (AuditEvent.entity_id == key)))
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return _stream(session, stmt)
