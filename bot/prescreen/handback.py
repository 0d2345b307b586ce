"""From the log-call modal to the secure page and back, with no identifier in between.

In portal mode the log-call modal cannot ask for a new candidate's name or phone. It opens with
an ``external_id`` and links to the secure page's add-candidate form with a handback token. Once
the candidate is added there, the page updates that same modal (``views.update`` by external id)
with the new reference code filled in, so the coordinator goes back to Slack and finishes the
call without retyping anything.

The token is opaque: a random nonce, the id of the channel the modal was opened from (when there
is one: the call summary is posted there, as for any logged call) and a keyed tag over (Slack
user, nonce, channel). It is not a credential (the page still needs its own sign-in), and a
forwarded link is useless to anyone else: the tag only matches for the user who opened the modal,
and a changed channel id does not match at all."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from bot.context import AppContext

_PREFIX = "logcall-"
_TAG_LEN = 32
_CHANNEL = re.compile(r"[A-Z0-9]{6,20}")  # Slack conversation ids: C…, G…, D…
_TOKEN = re.compile(r"([A-Za-z0-9_-]{16,32})(?:\.([A-Z0-9]{6,20}))?\.([0-9a-f]{32})")


@dataclass(frozen=True)
class Handback:
    external_id: str  # set on the modal when it opens; views.update finds it by this id
    token: str  # goes in the add-candidate link
    channel: str | None = None  # where the modal was opened; the call summary goes there


def _tags(ctx: AppContext, user_id: str, nonce: str, channel: str | None) -> list[str]:
    parts = (user_id, nonce) if channel is None else (user_id, nonce, channel)
    return [t[:_TAG_LEN] for t in ctx.cipher.indexes("handback", *parts)]


def _handback(ctx: AppContext, user_id: str, nonce: str, channel: str | None) -> Handback:
    channel = channel if channel and _CHANNEL.fullmatch(channel) else None
    tag = _tags(ctx, user_id, nonce, channel)[0]
    token = f"{nonce}.{channel}.{tag}" if channel else f"{nonce}.{tag}"
    return Handback(external_id=_PREFIX + nonce, token=token, channel=channel)


def new_handback(ctx: AppContext, user_id: str, channel: str | None = None) -> Handback:
    """A fresh handback for a modal `user_id` is about to open from `channel` (None: App Home)."""
    return _handback(ctx, user_id, secrets.token_urlsafe(18), channel)


def open_handback(ctx: AppContext, user_id: str, token: str | None) -> Handback | None:
    """The handback behind `token` when it was made for `user_id`; None for anything else
    (malformed, forged, another user's, or with another channel)."""
    match = _TOKEN.fullmatch(token or "")
    if match is None:
        return None
    nonce, channel, tag = match.groups()
    if not any(hmac.compare_digest(tag, t) for t in _tags(ctx, user_id, nonce, channel)):
        return None
    return Handback(external_id=_PREFIX + nonce, token=str(token), channel=channel)


def read_handback(ctx: AppContext, user_id: str, token: str | None) -> str | None:
    """The modal's external id when `token` was made for `user_id`; None for anything else."""
    handback = open_handback(ctx, user_id, token)
    return handback.external_id if handback else None


def handback_of(ctx: AppContext, user_id: str, external_id: str | None,
                channel: str | None = None) -> Handback | None:
    """The handback of a modal `user_id` opened from `channel` (by its external id), to render
    its link again when the modal is re-rendered; None when the id is not one of ours."""
    if not external_id or not external_id.startswith(_PREFIX):
        return None
    nonce = external_id[len(_PREFIX):]
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,32}", nonce):
        return None
    return _handback(ctx, user_id, nonce, channel)
