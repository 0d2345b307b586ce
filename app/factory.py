"""The application factory: settings in, a wired Bolt app out. Nothing happens at import."""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.context import AppContext
from bot.errors import BadPayload, DomainError
from handlers import payloads, register_all
from handlers.common import (
    answer_unacknowledged,
    domain_text,
    error_ref,
    refuse,
    unexpected_text,
)
from integrations import metrics
from integrations.graph import client_from_settings
from storage.crypto import PHICipher
from storage.db import Database
from storage.repositories import requests as processed

log = logging.getLogger("prescreen.app")


def make_web_client(settings: Settings, token: str) -> WebClient:
    client = WebClient(token=token, base_url=settings.slack_api_url, timeout=15)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client


def create_context(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    encryption_keys: list[str] | None = None,
    bot_token: str | None = None,
) -> AppContext:
    keys = encryption_keys or settings.encryption_keys
    if not keys:
        raise ValueError("PRESCREEN_ENCRYPTION_KEYS is required")
    token = bot_token or settings.slack_bot_token
    if not token:
        raise ValueError("a bot token is required (the sandbox provides one)")
    return AppContext(
        settings=settings,
        db=db or Database(settings.database_url),
        cipher=PHICipher(keys),
        slack=make_web_client(settings, token),
        clock=clock or SystemClock(),
        graph=None if settings.sandbox else client_from_settings(settings),
    )


def create_app(ctx: AppContext, *, signing_secret: str | None = None) -> App:
    """Build the Bolt app for this context and register every feature."""
    secret = signing_secret or ctx.settings.slack_signing_secret
    if not secret:
        # Socket Mode does not sign requests; the HTTP endpoint then refuses everything.
        secret = secrets.token_hex(32)
    app = App(
        client=ctx.slack,
        signing_secret=secret,
        token_verification_enabled=False,
        # Requests are verified at the web edge (bot/web.py) on the raw bytes before anything is
        # parsed, with the same check Bolt makes; Bolt's copy would run only after its parsing.
        # Socket Mode requests are not signed and never were checked here.
        request_verification_enabled=False,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt.App"),
    )
    on_error = _install_error_handler(app)
    payloads.register(app)  # damaged envelopes are refused first, before any other middleware
    _install_event_dedupe(app, ctx)
    register_all(_AfterAckGuard(app, on_error), ctx)  # type: ignore[arg-type]
    return app


ErrorHandler = Callable[..., None]


class _AfterAckGuard:
    """The app as the feature modules see it while they register listeners. Each listener is
    wrapped so that an error it raises *after* acknowledging goes to the one error handler (the
    user gets the usual ephemeral answer) instead of back to Bolt, whose thread runner would
    replace the acknowledgement it already has with nothing and answer Slack 404 after 3 s."""

    def __init__(self, app: App, on_error: ErrorHandler) -> None:
        self._app = app
        self._on_error = on_error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def action(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self._guarded(self._app.action(*args, **kwargs))

    def view(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self._guarded(self._app.view(*args, **kwargs))

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        return self._guarded(self._app.command(*args, **kwargs))

    def _guarded(self, register: Callable[[Callable[..., Any]], Any]
                 ) -> Callable[[Callable[..., Any]], Any]:
        def apply(listener: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(listener)  # Bolt reads the listener's own argument names
            def guarded(**kwargs: Any) -> Any:
                try:
                    return listener(**kwargs)
                except Exception as error:
                    ack = kwargs.get("ack")
                    if ack is None or ack.response is None:
                        raise  # not acknowledged yet: Bolt's error path answers in the response
                    body = kwargs.get("body") or {}
                    self._on_error(error=error, body=body, response=None,
                                   respond=kwargs.get("respond") or _respond_for(body),
                                   client=kwargs.get("client") or self._app.client, ack=ack)
                    return None

            register(guarded)
            return listener  # stacked decorators each wrap the listener itself

        return apply


def _respond_for(body: dict[str, Any]) -> Respond | None:
    urls = body.get("response_urls") or []
    url = body.get("response_url") or (urls[0].get("response_url") if urls else None)
    return Respond(response_url=url) if isinstance(url, str) else None


def _install_event_dedupe(app: App, ctx: AppContext) -> None:
    """Slack re-delivers an event it thinks we missed (X-Slack-Retry-Num); handle each event id once."""
    @app.middleware
    def once_per_event(body: dict[str, Any], next: Any, ack: Any = None) -> Any:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            with ctx.db.session() as session:
                first = processed.claim(session, f"event:{event_id}")
            if not first:
                log.info("event %s already handled; skipping Slack's retry", event_id)
                return BoltResponse(status=200, body="")
        return next()


def _install_error_handler(app: App) -> ErrorHandler:
    @app.error
    def on_error(
        error: Exception, body: dict[str, Any], respond: Any, response: BoltResponse | None,
        client: WebClient, ack: Any = None,
    ) -> None:
        if isinstance(error, BadPayload):
            # out of date, damaged or forged: refuse at once, log one quiet line (no values)
            log.info("refused a damaged %s (%s)", _kind(body), error.detail or "values")
            refuse(error, body, response, respond, client, ack)
            return
        if isinstance(error, DomainError):
            text = domain_text(error)
            log.info("domain error %s", type(error).__name__)
        else:
            ref = error_ref()
            metrics.unexpected("slack_handler")
            # The traceback is ours; request bodies and values are never logged.
            log.error("unexpected error ref=%s in %s", ref, _kind(body),
                      exc_info=(type(error), error, error.__traceback__),
                      extra={"error_ref": ref, "request_kind": _kind(body)})
            text = unexpected_text(ref)
        if response is not None and "command" in body:
            # Not acknowledged yet: answer in the HTTP response itself.
            response.status = 200
            response.body = json.dumps({"response_type": "ephemeral", "text": text})
            response.headers["content-type"] = ["application/json;charset=utf-8"]
            return
        if answer_unacknowledged(response, body, text, ack):
            return
        if respond is not None and _has_response_url(body):
            try:
                respond(text=text, response_type="ephemeral", replace_original=False)
            except Exception:  # the user message is best effort; the log has the ref
                log.warning("could not deliver the error message")

    return on_error


KINDS = ("block_actions", "view_submission", "view_closed", "event_callback", "shortcut")


def _kind(body: dict[str, Any]) -> str:
    """What kind of request failed, for the log: only our own words, never the payload's."""
    if "command" in body:
        return "command"
    kind = body.get("type")
    return kind if kind in KINDS else "request"


def _has_response_url(body: dict[str, Any]) -> bool:
    if body.get("response_url"):
        return True
    urls = body.get("response_urls")
    return bool(urls)
