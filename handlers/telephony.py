"""The Call button (RingCentral click-to-call): acknowledged at once, checked and placed after."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot import blocks as bk
from bot import ids
from bot.context import AppContext
from bot.errors import DomainError
from bot.telephony.calls import call_candidate
from handlers import payloads
from handlers.common import tell


def register(app: App, ctx: AppContext) -> None:
    @app.action(re.compile(f"^{ids.RC_CALL}(:[0-9])?$"))
    def call(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, action, channel = payloads.action(body)
        value = bk.parse(action.value, payloads.CandidateValue, where=payloads.FROM_HOME)
        ack()  # Slack has its answer; the checks and the RingOut run after
        try:
            placed = call_candidate(ctx, user_id, value.ref)
        except DomainError as exc:
            tell(client, user_id, channel, exc.message, None)
            return
        tell(client, user_id, channel, placed.message, None)
