"""POST /ringcentral/webhook: RingCentral's notifications for inbound texts.

A subscription is created only after this URL echoes the `Validation-Token` header; every
notification afterwards carries the `Verification-Token` the bot chose, compared in constant
time. Anything else is refused before the body is read as JSON. Nothing from the request is
logged."""

from __future__ import annotations

import hmac
import json

from app.web import Refused, Route, WebRequest, WebResponse
from bot.context import AppContext
from bot.telephony.connection import rc_client, webhook_token
from bot.telephony.texts import handle_notification

PATH = "/ringcentral/webhook"


def webhook_routes(ctx: AppContext) -> dict[tuple[str, str], Route]:
    def serve(req: WebRequest) -> WebResponse:
        expected = webhook_token(ctx)
        if rc_client(ctx) is None or not expected:
            return WebResponse.text("not found", 404)  # RingCentral is not configured
        validation = req.headers.get("validation-token")
        if validation is not None and not req.body:
            if len(validation) > 200 or not validation.isprintable():
                raise Refused(400, "malformed validation token")
            return WebResponse(200, b"", [("Validation-Token", validation)])
        given = req.headers.get("verification-token") or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Refused(403, "ringcentral notification without the verification token")
        try:
            notification = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "ringcentral notification is not JSON") from None
        if not isinstance(notification, dict):
            raise Refused(400, "ringcentral notification is not an object")
        handle_notification(ctx, notification)
        return WebResponse(200, b"")

    return {("POST", PATH): serve}
