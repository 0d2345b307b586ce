"""Addresses of the secure page. Links carry reference codes and opaque ids only, never a
credential: a forwarded link still needs its reader's own sign-in.

`safe_next` is the one judge of where the page may send a browser after sign-in."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlencode

from bot.config import Settings

PREFIX = "/secure"
HOME = PREFIX + "/"
LOGIN = PREFIX + "/login"
CALLBACK = PREFIX + "/auth/callback"
LOGOUT = PREFIX + "/logout"
_MAX_NEXT = 500
_PLAIN = re.compile(r"[A-Za-z0-9\-._~/?=&%+:@,;!*'()]*")  # printable URL characters, nothing else


def _base(settings: Settings) -> str:
    if not settings.public_url:
        raise ValueError("PUBLIC_URL is not set: the secure page has no address")
    return settings.public_url


def home_url(settings: Settings) -> str:
    return _base(settings) + HOME


def contact_card_url(settings: Settings, ref: str) -> str:
    return f"{_base(settings)}{PREFIX}/c/{quote(ref, safe='')}"


def add_candidate_url(settings: Settings, study_key: str, handback: str | None = None) -> str:
    args = {"study": study_key, **({"handback": handback} if handback else {})}
    return f"{_base(settings)}{PREFIX}/candidates/new?{urlencode(args)}"


def search_url(settings: Settings) -> str:
    return f"{_base(settings)}{PREFIX}/search"


def sign_path(public_id: str, decision: str, version: int, reason: str | None = None) -> str:
    """The page where an approver signs a decision: the referral's opaque id, the decision, the
    version they clicked on and, for a rejection, the reason code chosen in Slack."""
    args: dict[str, str | int] = {"decision": decision, "v": version}
    if reason:
        args["reason"] = reason
    return f"{PREFIX}/sign/{quote(public_id, safe='')}?{urlencode(args)}"


def sign_url(settings: Settings, public_id: str, decision: str, version: int,
             reason: str | None = None) -> str:
    return _base(settings) + sign_path(public_id, decision, version, reason)


def redirect_uri(settings: Settings) -> str:
    """Where Slack sends the browser back after sign-in (registered in the Slack app)."""
    return _base(settings) + CALLBACK


def login_path(next_path: str | None = None) -> str:
    return LOGIN if not next_path else f"{LOGIN}?{urlencode({'next': next_path})}"


def safe_next(value: str | None) -> str:
    """``value`` if it is a path of the secure page itself, else the home page. Refused: anything
    not starting with /secure/, a second slash or a backslash anywhere (``//host`` and ``/\\host``
    are other hosts to a browser), schemes, dot segments, control characters, and whatever turns
    into one of those once percent-decoded again."""
    if not value or len(value) > _MAX_NEXT:
        return HOME
    seen = value
    for _ in range(3):  # a browser or proxy may decode again: every decoding must be safe
        if not _is_page_path(seen):
            return HOME
        decoded = unquote(seen)
        if decoded == seen:
            return value
        seen = decoded
    return HOME  # still encoded three levels deep: nothing we produce looks like that


def _is_page_path(path: str) -> bool:
    if not _PLAIN.fullmatch(path):
        return False  # whitespace, control characters, backslashes, non-ASCII
    if not (path == PREFIX or path.startswith(PREFIX + "/") or path.startswith(PREFIX + "?")):
        return False
    if "//" in path or "\\" in path:
        return False
    route = path.split("?", 1)[0]
    return not any(seg in (".", "..") for seg in route.split("/"))
