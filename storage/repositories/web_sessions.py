"""Secure-page sessions and login attempts. Callers pass hashes, never the raw cookie or state."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.models import LoginAttempt, WebSession


def add_session(session: Session, *, id_hash: str, slack_user_id: str, team_id: str,
                csrf_secret: str, now: dt.datetime, printed_name: str | None = None
                ) -> WebSession:
    row = WebSession(id_hash=id_hash, slack_user_id=slack_user_id, team_id=team_id,
                     csrf_secret=csrf_secret, created_at=now, last_seen_at=now,
                     authenticated_at=now, printed_name=printed_name)
    session.add(row)
    session.flush()
    return row


def get_session(session: Session, id_hash: str) -> WebSession | None:
    return session.get(WebSession, id_hash)


def touch_session(session: Session, id_hash: str, now: dt.datetime) -> None:
    session.execute(update(WebSession).where(WebSession.id_hash == id_hash)
                    .values(last_seen_at=now))


def delete_session(session: Session, id_hash: str) -> bool:
    res = session.execute(delete(WebSession).where(WebSession.id_hash == id_hash))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def delete_sessions_of(session: Session, slack_user_id: str) -> int:
    res = session.execute(delete(WebSession).where(WebSession.slack_user_id == slack_user_id))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def count_sessions(session: Session, slack_user_id: str | None = None) -> int:
    stmt = select(WebSession.id_hash)
    if slack_user_id is not None:
        stmt = stmt.where(WebSession.slack_user_id == slack_user_id)
    return len(session.scalars(stmt).all())


def purge_sessions(session: Session, *, idle_before: dt.datetime, created_before: dt.datetime
                   ) -> int:
    res = session.execute(delete(WebSession).where(
        (WebSession.last_seen_at < idle_before) | (WebSession.created_at < created_before)))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def add_attempt(session: Session, *, state_hash: str, nonce: str, code_verifier: str,
                next_path: str, now: dt.datetime) -> None:
    session.add(LoginAttempt(state_hash=state_hash, nonce=nonce, code_verifier=code_verifier,
                             next_path=next_path, created_at=now, used=False))
    session.flush()


def claim_attempt(session: Session, state_hash: str) -> LoginAttempt | None:
    """The attempt, marked used in the same statement so two callbacks cannot both have it;
    None when unknown or used already."""
    res = session.execute(update(LoginAttempt)
                          .where(LoginAttempt.state_hash == state_hash,
                                 LoginAttempt.used.is_(False))
                          .values(used=True))
    if not res.rowcount:  # type: ignore[attr-defined]
        return None
    return session.get(LoginAttempt, state_hash)


def purge_attempts(session: Session, before: dt.datetime) -> int:
    res = session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < before))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
