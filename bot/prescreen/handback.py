"""From the log-call modal to the secure page and back, with no identifier in between.

In portal mode the log-call modal cannot ask for a new candidate's name or phone. It opens with
an ``external_id`` and links to the secure page's add-candidate form with a handback token. Once
the candidate is added there, the page updates that same modal (``views.update`` by external id)
with the new reference code filled in, so the coordinator goes back to Slack and finishes the
call without retyping anything.

The token is opaque: a random nonce and a keyed tag over (Slack user, nonce). It is not a
credential (the page still needs its own sign-in), and a forwarded link is useless to anyone
else: the tag only matches for the user who opened the modal."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from bot.context import AppContext

_PREFIX = "logcall-"
_TAG_LEN = 32
_TOKEN = re.compile(r"([A-Za-z0-9_-]{16,32})\.([0-9a-f]{32})")


@dataclass(frozen=True)
class Handback:
    external_id: str  # set on the modal when it opens; views.update finds it by this id
    token: str  # goes in the add-candidate link


def _tags(ctx: AppContext, user_id: str, nonce: str) -> list[str]:
    return [t[:_TAG_LEN] for t in ctx.cipher.indexes("handback", user_id, nonce)]


def new_handback(ctx: AppContext, user_id: str) -> Handback:
    """A fresh handback for a modal `user_id` is about to open."""
    nonce = secrets.token_urlsafe(18)
    tag = _tags(ctx, user_id, nonce)[0]
    return Handback(external_id=_PREFIX + nonce, token=f"{nonce}.{tag}")


def read_handback(ctx: AppContext, user_id: str, token: str | None) -> str | None:
    """The modal's external id when `token` was made for `user_id`; None for anything else
    (malformed, forged, or another user's)."""
    match = _TOKEN.fullmatch(token or "")
    if match is None:
        return None
    nonce, tag = match.groups()
    if not any(hmac.compare_digest(tag, t) for t in _tags(ctx, user_id, nonce)):
        return None
    return _PREFIX + nonce


def handback_of(ctx: AppContext, user_id: str, external_id: str | None) -> Handback | None:
    """The handback of a modal `user_id` opened (by its external id), to render its link again
    when the modal is re-rendered; None when the id is not one of ours."""
    if not external_id or not external_id.startswith(_PREFIX):
        return None
    nonce = external_id[len(_PREFIX):]
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,32}", nonce):
        return None
    return Handback(external_id=external_id, token=f"{nonce}.{_tags(ctx, user_id, nonce)[0]}")
