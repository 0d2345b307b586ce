"""Wiring for one process: context + Bolt app + WSGI app, and the sandbox when no token is set."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from slack_bolt import App

from app.factory import create_app, create_context
from app.ringcentral_webhook import webhook_routes
from app.web import Route, SlackWebApp, WebRequest, WebResponse
from bot import outbox
from bot.clock import Clock, OffsetClock
from bot.config import Settings
from bot.context import AppContext
from pages import build_pages
from storage import migrate
from storage.crypto import PHICipher
from storage.db import Database

log = logging.getLogger("prescreen.runtime")


@dataclass
class Runtime:
    settings: Settings
    ctx: AppContext
    bolt: App
    web: SlackWebApp
    signing_secret: str
    sandbox: Any = None  # sandbox.runtime.Sandbox in sandbox mode
    closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                log.warning("error while shutting down", exc_info=True)


def sandbox_key(data_dir: Path) -> str:
    """The sandbox keeps its own local encryption key so demo PHI survives restarts."""
    path = data_dir / "sandbox.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = PHICipher.generate_key()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    migrate_db: bool = True,
    app_url: str | None = None,
) -> Runtime:
    """Everything one process needs. In sandbox mode this also starts the Slack stand-in,
    but only when nothing real is configured (SettingsError otherwise, before anything opens)."""
    settings.check_sandbox()
    db = db or Database(settings.database_url)
    if migrate_db:
        migrate.upgrade(settings.database_url)
    if settings.sandbox:
        runtime: Runtime = sandbox_package().start_sandbox(settings, db=db, clock=clock or OffsetClock(),
                                                           app_url=app_url)
        return runtime
    ctx = create_context(settings, db=db, clock=clock)
    secret = settings.slack_signing_secret or secrets.token_hex(32)
    bolt = create_app(ctx, signing_secret=secret)
    web = SlackWebApp(bolt, db, routes=webhook_routes(ctx), prefix_routes=secure_page_routes(ctx),
                      signing_secret=secret,
                      # METRICS_PORT moves /metrics off the web port (app/server.py serves it)
                      metrics_token=None if settings.metrics_port else settings.metrics_token,
                      metrics_live=lambda: outbox.gauges(ctx))
    rt = Runtime(settings, ctx, bolt, web, secret)
    rt.closers.append(db.dispose)
    return rt


def secure_page_routes(ctx: AppContext) -> dict[tuple[str, str], Route]:
    """The secure page (pages/), mounted under /secure: its own router answers every path there."""
    pages = build_pages(ctx)

    def serve(req: WebRequest) -> WebResponse:
        resp = pages.handle(req)
        return WebResponse(resp.status, resp.body, resp.headers)

    return {("GET", "/secure"): serve, ("POST", "/secure"): serve}


def sandbox_package() -> ModuleType:
    """The sandbox package (Slack and Graph stand-ins, console, demo data), for sandbox mode only.
    The sandbox depends on the app, never the reverse: this is the app's one way in."""
    import sandbox  # the one sandbox seam: loaded lazily, so production never loads the stand-ins

    return sandbox


def add_routes(rt: Runtime, routes: dict[tuple[str, str], Route]) -> None:
    rt.web.routes.update(routes)
