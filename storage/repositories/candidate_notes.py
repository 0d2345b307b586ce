"""Notes on a candidate: those added on the contact card, and the notes of logged calls.
Texts stay Fernet tokens here; the use case decrypts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import CandidateNote, Member, PrescreenCall

MAX_ROWS = 200  # per kind; a card shows the newest


@dataclass(frozen=True)
class NoteRow:
    kind: str  # note | call
    at: dt.datetime
    author_slack_id: str
    author_name: str | None
    text_enc: str
    outcome: str | None = None


def add(session: Session, candidate_id: int, author_id: int, text_enc: str,
        at: dt.datetime) -> CandidateNote:
    note = CandidateNote(candidate_id=candidate_id, author_id=author_id, text_enc=text_enc,
                         created_at=at)
    session.add(note)
    session.flush()
    return note


def history(session: Session, candidate_id: int, limit: int = MAX_ROWS) -> list[NoteRow]:
    """Page notes and call notes of one candidate, newest first."""
    notes = session.execute(
        select(CandidateNote.created_at, Member.slack_user_id, Member.display_name,
               CandidateNote.text_enc)
        .join(Member, Member.id == CandidateNote.author_id)
        .where(CandidateNote.candidate_id == candidate_id)
        .order_by(CandidateNote.created_at.desc(), CandidateNote.id.desc()).limit(limit))
    calls = session.execute(
        select(PrescreenCall.called_at, Member.slack_user_id, Member.display_name,
               PrescreenCall.notes_enc, PrescreenCall.outcome)
        .join(Member, Member.id == PrescreenCall.coordinator_id)
        .where(PrescreenCall.candidate_id == candidate_id, PrescreenCall.notes_enc.is_not(None))
        .order_by(PrescreenCall.called_at.desc(), PrescreenCall.id.desc()).limit(limit))
    rows = [NoteRow("note", at, uid, name, enc) for at, uid, name, enc in notes]
    rows += [NoteRow("call", at, uid, name, enc, outcome) for at, uid, name, enc, outcome in calls]
    return sorted(rows, key=lambda r: r.at, reverse=True)[:limit]


SYNCED_KEY = "rc:"  # the idempotency key of an attempt made from RingCentral's call log


@dataclass(frozen=True)
class AttemptRow:
    at: dt.datetime
    outcome: str
    author_slack_id: str
    author_name: str | None
    from_ringcentral: bool


def attempts(session: Session, candidate_id: int, limit: int = 10) -> list[AttemptRow]:
    """The candidate's latest call attempts, newest first, and whether the call-log sync made
    each one (rather than a member logging it)."""
    rows = session.execute(
        select(PrescreenCall.called_at, PrescreenCall.outcome, Member.slack_user_id,
               Member.display_name, PrescreenCall.idempotency_key)
        .join(Member, Member.id == PrescreenCall.coordinator_id)
        .where(PrescreenCall.candidate_id == candidate_id)
        .order_by(PrescreenCall.called_at.desc(), PrescreenCall.id.desc()).limit(limit))
    return [AttemptRow(at, outcome, uid, name, bool(key and key.startswith(SYNCED_KEY)))
            for at, outcome, uid, name, key in rows]
