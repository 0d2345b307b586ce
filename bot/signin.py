"""Sign in with Slack, the rules: who gets a session on the secure page.

The browser goes to Slack with a fresh state, nonce and PKCE verifier (kept server-side, the state
only hashed, used once, ten minutes at most) and comes back with a code. The code is exchanged for
an ID token, which is verified (integrations/slack_oidc); then its Slack team must be the bot's
workspace and its user a member whose role may see identifiers in some active study. Each
outcome is audited and a refusal logged as one WARNING line, without any token or code."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from dataclasses import dataclass

from bot import web_sessions
from bot.access import require_page_access
from bot.context import AppContext
from bot.errors import DomainError, NotAllowed
from bot.secure_links import redirect_uri, safe_next
from integrations import slack_oidc
from storage import audit
from storage.repositories import web_sessions as repo

log = logging.getLogger("prescreen.signin")

ATTEMPT_TTL = dt.timedelta(minutes=10)
_TEAM_KEY = "workspace_team_id"
START_AGAIN = "Open the secure page again to sign in."


class SignInRefused(DomainError):
    """Sign-in did not work. The message is for the person; ``reason`` (fixed words) is for the
    log and the audit trail."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SignInUnavailable(DomainError):
    """Slack could not be reached or the page is not set up; nothing the person did."""


@dataclass(frozen=True)
class LoginStart:
    url: str  # Slack's authorize URL
    state: str  # also kept in a short-lived cookie: the callback must come back to this browser


@dataclass(frozen=True)
class SignedInNow:
    cookie: str  # the new session's cookie value
    user_id: str
    next_path: str


def _configured(ctx: AppContext) -> tuple[str, str]:
    s = ctx.settings
    if not (s.slack_oidc_client_id and s.slack_oidc_client_secret and s.public_url):
        raise SignInUnavailable("Sign in with Slack is not set up on this server. Ask your admin.")
    return s.slack_oidc_client_id, s.slack_oidc_client_secret


def _discover(ctx: AppContext) -> slack_oidc.Discovery:
    try:
        return slack_oidc.discover(ctx.settings.slack_oidc_issuer)
    except slack_oidc.OidcError as exc:
        log.warning("sign-in unavailable: %s", exc.reason)
        raise SignInUnavailable("Slack did not answer. Wait a minute, then try again.") from None


def begin(ctx: AppContext, next_path: str | None) -> LoginStart:
    """A new login attempt and the URL of Slack's sign-in page for it."""
    client_id, _secret = _configured(ctx)
    disc = _discover(ctx)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, inside PKCE's 43..128
    now = ctx.clock.now()
    with ctx.db.session() as session:
        repo.purge_attempts(session, now - ATTEMPT_TTL)
        repo.add_attempt(session, state_hash=web_sessions.digest(state), nonce=nonce,
                         code_verifier=verifier, next_path=safe_next(next_path), now=now)
    url = slack_oidc.authorize_url(disc, client_id=client_id, redirect_uri=redirect_uri(ctx.settings),
                                   state=state, nonce=nonce, code_verifier=verifier)
    return LoginStart(url=url, state=state)


def workspace_team(ctx: AppContext) -> str:
    """The bot's own workspace (auth.test), asked once per process."""
    team = ctx.extras.get(_TEAM_KEY)
    if not team:
        team = str(ctx.slack.auth_test()["team_id"])
        ctx.extras[_TEAM_KEY] = team
    return str(team)


def _refuse(ctx: AppContext, message: str, reason: str, actor: str = "unknown") -> SignInRefused:
    log.warning("sign-in refused: %s", reason)
    with ctx.db.session() as session:
        audit.record(session, actor=actor, action="signin.refused", entity="web_session",
                     entity_id="-", reason=reason)
    return SignInRefused(message, reason)


def complete(ctx: AppContext, *, state: str | None, code: str | None, error: str | None,
             browser_state: str | None) -> SignedInNow:
    """The person back from Slack: a new session, or SignInRefused saying what happened."""
    client_id, client_secret = _configured(ctx)
    if error:
        raise _refuse(ctx, f"Sign-in was cancelled in Slack. {START_AGAIN}", "cancelled at Slack")
    if not state or not code:
        raise _refuse(ctx, f"This sign-in link is incomplete. {START_AGAIN}", "callback incomplete")
    if not browser_state or not hmac.compare_digest(state.encode(), browser_state.encode()):
        raise _refuse(ctx, f"This sign-in was started in another browser or has expired. "
                           f"{START_AGAIN}", "state not from this browser")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        attempt = repo.claim_attempt(session, web_sessions.digest(state))
        found = None if attempt is None else (attempt.nonce, attempt.code_verifier,
                                              attempt.next_path, attempt.created_at)
    if found is None:
        raise _refuse(ctx, f"This sign-in link was used already. {START_AGAIN}",
                      "state unknown or used")
    nonce, verifier, next_path, created = found
    if now - created > ATTEMPT_TTL:
        raise _refuse(ctx, f"This sign-in took too long. {START_AGAIN}", "attempt expired")
    disc = _discover(ctx)
    try:
        id_token = slack_oidc.exchange_code(disc, client_id=client_id, client_secret=client_secret,
                                            redirect_uri=redirect_uri(ctx.settings), code=code,
                                            code_verifier=verifier)
        claims = slack_oidc.verify_id_token(disc, id_token, client_id=client_id, nonce=nonce)
    except slack_oidc.OidcError as exc:
        raise _refuse(ctx, f"Slack's answer could not be verified, so you are not signed in. "
                           f"{START_AGAIN}", exc.reason) from None
    user_id, team_id = claims.get(slack_oidc.USER_CLAIM), claims.get(slack_oidc.TEAM_CLAIM)
    if not isinstance(user_id, str) or not isinstance(team_id, str) or not user_id or not team_id:
        raise _refuse(ctx, f"Slack did not say who you are. {START_AGAIN}", "ID token without Slack ids")
    if not hmac.compare_digest(team_id.encode(), workspace_team(ctx).encode()):
        raise _refuse(ctx, "You signed in to another Slack workspace. Sign in to the workspace "
                           "where you use prescreen-bot.", "another workspace")
    try:
        with ctx.db.session() as session:
            require_page_access(session, user_id)
    except NotAllowed as exc:
        raise _refuse(ctx, exc.message, "no role that may see identifiers", actor=user_id) from None
    name = claims.get("name")
    printed = " ".join(name.split())[:200] if isinstance(name, str) and name.strip() else None
    cookie = web_sessions.start(ctx, user_id, team_id, printed)
    with ctx.db.session() as session:
        audit.record(session, actor=user_id, action="signin.succeeded", entity="web_session",
                     entity_id="-")
    log.info("signed in to the secure page")
    return SignedInNow(cookie=cookie, user_id=user_id, next_path=next_path)


def sign_out(ctx: AppContext, cookie: str | None, user_id: str) -> None:
    web_sessions.end(ctx, cookie)
    with ctx.db.session() as session:
        audit.record(session, actor=user_id, action="signin.signed_out", entity="web_session",
                     entity_id="-")
