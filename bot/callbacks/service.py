"""Callback records: schedule and cancel. Reminders come from the scheduler jobs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.context import AppContext
from storage import audit
from storage.models import Callback, Candidate, Member, PrescreenCall, Study

REMIND_BEFORE = dt.timedelta(minutes=10)
OPEN = ("scheduled", "snoozed")


def schedule_callback(ctx: AppContext, session: Session, *, candidate: Candidate, study: Study,
                      owner: Member, due_at: dt.datetime, call: PrescreenCall | None,
                      actor: str, kind: str = "requested") -> Callback:
    cancel_open_callbacks(session, candidate, actor, "replaced by a new callback")
    cb = Callback(candidate_id=candidate.id, study_id=study.id, owner_id=owner.id,
                  call_id=call.id if call else None, due_at=due_at,
                  remind_at=due_at - REMIND_BEFORE, status="scheduled", kind=kind)
    session.add(cb)
    session.flush()
    audit.record(session, actor=actor, action="callback.scheduled", entity="callback",
                 entity_id=cb.id, after={"candidate": candidate.ref_code,
                                         "due_at": due_at.isoformat(), "kind": kind})
    return cb


def cancel_open_callbacks(session: Session, candidate: Candidate, actor: str, reason: str) -> int:
    rows = session.scalars(select(Callback).where(Callback.candidate_id == candidate.id,
                                                  Callback.status.in_(OPEN))).all()
    for cb in rows:
        cb.status = "cancelled"
        audit.record(session, actor=actor, action="callback.cancelled", entity="callback",
                     entity_id=cb.id, before={"status": "scheduled"},
                     after={"status": "cancelled"}, reason=reason)
    return len(rows)
