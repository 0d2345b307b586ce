"""Secure-page sessions: who is signed in, for how long, with which form token.

The browser holds a random id; the database only its SHA-256. A session ends after 30 minutes
without a request or 12 hours after sign-in, whichever comes first, on the app's clock. Every
request re-checks membership (bot/signin.require_page_access): a member deactivated or left
without a role that may see identifiers is signed out at their next request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from bot.access import require_page_access
from bot.context import AppContext
from bot.errors import NotAllowed
from storage.repositories import web_sessions as repo

IDLE = dt.timedelta(minutes=30)
ABSOLUTE = dt.timedelta(hours=12)


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    team_id: str
    csrf_token: str
    authenticated_at: dt.datetime  # when Slack last confirmed the person (for fresh-login rules)
    printed_name: str | None = None  # the name in Slack's ID token at that sign-in


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def start(ctx: AppContext, user_id: str, team_id: str, printed_name: str | None = None) -> str:
    """A new session; returns the cookie value (shown nowhere else, stored only hashed)."""
    raw = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        repo.add_session(session, id_hash=digest(raw), slack_user_id=user_id, team_id=team_id,
                         csrf_secret=secrets.token_urlsafe(32), now=now,
                         printed_name=printed_name)
        repo.purge_sessions(session, idle_before=now - IDLE, created_before=now - ABSOLUTE)
    return raw


def resume(ctx: AppContext, raw: str | None) -> SignedIn | None:
    """The signed-in person for this cookie value, or None (unknown, idle too long, too old).
    Raises NotAllowed (and ends every session of theirs) when they may no longer use the page."""
    if not raw or len(raw) > 200:
        return None
    key = digest(raw)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        row = repo.get_session(session, key)
        if row is None:
            return None
        if now - row.last_seen_at > IDLE or now - row.created_at > ABSOLUTE:
            repo.delete_session(session, key)
            return None
        try:
            require_page_access(session, row.slack_user_id)
        except NotAllowed:
            repo.delete_sessions_of(session, row.slack_user_id)
            session.commit()
            raise
        repo.touch_session(session, key, now)
        return SignedIn(row.slack_user_id, row.team_id, row.csrf_secret, row.authenticated_at,
                        row.printed_name)


def end(ctx: AppContext, raw: str | None) -> None:
    if not raw:
        return
    with ctx.db.session() as session:
        repo.delete_session(session, digest(raw))


def csrf_ok(signed_in: SignedIn | None, token: str | None) -> bool:
    """The form's token is this session's, compared in constant time."""
    if signed_in is None or not token:
        return False
    return hmac.compare_digest(signed_in.csrf_token.encode(), token.encode("utf-8", "replace"))
