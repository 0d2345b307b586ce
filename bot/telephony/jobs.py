"""Jobs: the call-log sync and the webhook subscription for inbound texts (created, renewed)."""

from __future__ import annotations

import datetime as dt
import logging

from bot.context import AppContext
from bot.telephony.connection import rc_client, webhook_token, webhook_url
from bot.telephony.sync import call_log_job
from integrations.ringcentral import RcError
from integrations.ringcentral.client import SMS_FILTER
from storage.repositories import ringcentral as repo

log = logging.getLogger("prescreen.telephony")

RENEW_BEFORE = dt.timedelta(days=2)
LIFETIME_S = 7 * 24 * 3600

__all__ = ["call_log_job", "subscription_job"]


def subscription_job(ctx: AppContext) -> str:
    """Keep one webhook subscription for inbound texts: create it, renew it before it expires,
    create it again when RingCentral no longer knows it."""
    client = rc_client(ctx)
    address, token = webhook_url(ctx), webhook_token(ctx)
    if client is None or not address or not token:
        return ""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        current = repo.subscription(session)
        sub_id = current.id if current and current.address == address else None
        expires = current.expires_at if current else None
    if sub_id and expires and expires - now > RENEW_BEFORE:
        return ""
    try:
        if sub_id:
            try:
                expires = client.renew_subscription(sub_id)
                verb = "renewed"
            except RcError:
                sub_id = None
        if not sub_id:
            sub_id, expires = client.create_subscription(
                address=address, verification_token=token,
                event_filters=[SMS_FILTER.format(ext="~")], expires_in=LIFETIME_S)
            verb = "created"
    except RcError as exc:
        log.warning("webhook subscription for texts not in place: %s", exc)
        return f"webhook subscription failed: {exc}"
    assert expires is not None
    with ctx.db.session() as session:
        repo.save_subscription(session, sub_id, address, expires, now)
    return f"webhook subscription {verb} until {expires:%Y-%m-%d %H:%M} UTC"
