"""The process's RingCentral client and the member-to-extension match."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from bot.context import AppContext
from integrations.ringcentral import RingCentralClient, client_from_settings
from storage.models import Member
from storage.repositories import ringcentral as repo

_lock = threading.Lock()
CLIENT = "ringcentral"
NUMBERS = "ringcentral_numbers"


def rc_client(ctx: AppContext) -> RingCentralClient | None:
    """The RingCentral client, or None when RingCentral is not configured (nothing changes then).
    The sandbox and the tests put a client for the stand-in in ctx.extras first."""
    with _lock:
        if CLIENT not in ctx.extras:
            ctx.extras[CLIENT] = client_from_settings(ctx.settings)
        client: RingCentralClient | None = ctx.extras[CLIENT]
        return client


def enabled(ctx: AppContext) -> bool:
    return rc_client(ctx) is not None


def direct_number(ctx: AppContext, extension_id: str) -> str | None:
    """The extension's direct number (asked once per process)."""
    client = rc_client(ctx)
    assert client is not None
    cache: dict[str, Any] = ctx.extras.setdefault(NUMBERS, {})
    if extension_id not in cache:
        cache[extension_id] = client.direct_number(extension_id)
    number: str | None = cache[extension_id]
    return number


def match_extensions(ctx: AppContext) -> dict[str, int]:
    """Match active members to extensions: `ringcentral_extension` from the studies file (an
    extension number or id) first, else the member's email. Returns counts."""
    client = rc_client(ctx)
    if client is None:
        return {}
    exts = list(client.extensions())
    by_email = {e.email: e for e in exts if e.email}
    by_number = {e.number: e for e in exts} | {e.id: e for e in exts}
    counts = {"matched": 0, "unmatched": 0}
    with ctx.db.session() as session:
        for member, row in repo.active_members(session):
            explicit = row.explicit if row is not None else None
            ext = by_number.get(explicit) if explicit else by_email.get((member.email or "").lower())
            if ext is not None or row is not None:
                repo.set_extension(session, member.id, ext.id if ext else None)
            counts["matched" if ext else "unmatched"] += 1
    return counts


def extension_for(ctx: AppContext, session: Session, member: Member) -> str | None:
    row = repo.extension_row(session, member.id)
    return row.extension_id if row is not None else None


WEBHOOK_TOKEN = "ringcentral_webhook_token"


def webhook_token(ctx: AppContext) -> str | None:
    """The verification token RingCentral sends with every notification (the sandbox sets its own)."""
    token: str | None = ctx.settings.ringcentral_webhook_token or ctx.extras.get(WEBHOOK_TOKEN)
    return token


def webhook_url(ctx: AppContext) -> str | None:
    url: str | None = ctx.extras.get("ringcentral_webhook_url") or ctx.settings.ringcentral_webhook_url
    return url
