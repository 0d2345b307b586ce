"""Sandbox only: click-to-call, the call log and texts against the local RingCentral stand-in.

Every demo member gets an extension (matched by email); a Call button places a RingOut that the
stand-in "answers" or "misses" in turn (answered, no answer, voicemail); a moment later the call
log is synced, so the attempt (or the "log the outcome" DM) appears without typing. Never used
when RINGCENTRAL_* settings are present."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from bot.context import AppContext
from bot.outbox import deliver
from bot.telephony.connection import CLIENT, WEBHOOK_TOKEN
from bot.telephony.sync import sync_all
from integrations.ringcentral import RingCentralClient
from sandbox.ringcentral_standin import RingCentralStandin

log = logging.getLogger("prescreen.sandbox")

SYNC_DELAY_S = 1.5


def start_sandbox_ringcentral(ctx: AppContext, demo: dict[str, Any], url: str
                              ) -> RingCentralStandin | None:
    if ctx.settings.ringcentral_configured:
        return None
    standin = RingCentralStandin(clock=ctx.clock.now).start()
    for n, m in enumerate(demo.get("members") or []):
        if m.get("email"):
            standin.add_extension(m["email"], f"+1617555{n + 1:04d}")
    standin.outcome_cycle = ["answered", "missed", "voicemail"]
    ctx.extras[CLIENT] = RingCentralClient(server_url=standin.url, client_id=standin.client_id,
                                           client_secret=standin.client_secret,
                                           jwt=standin.issue_jwt())
    ctx.extras[WEBHOOK_TOKEN] = secrets.token_urlsafe(24)
    ctx.extras["ringcentral_webhook_url"] = url + "/ringcentral/webhook"

    def after_call(_record: dict[str, Any]) -> None:
        def sync() -> None:
            try:
                log.info("sandbox: call log synced (%s)", sync_all(ctx))
                deliver(ctx, max_seconds=3)
            except Exception:
                log.exception("sandbox: call-log sync failed")

        threading.Timer(SYNC_DELAY_S, sync).start()

    standin.on_ringout = after_call
    log.info("sandbox: RingCentral stand-in at %s", standin.url)
    return standin

