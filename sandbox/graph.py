"""Sandbox only: demo Outlook calendars from the local Graph stand-in, no tenant needed.

The app talks to the stand-in over plain HTTP with a fixed sandbox token (StaticTokenCredential),
bypassing msal, which requires an https authority. Never used when MS_* settings are present.
"""

from __future__ import annotations

import logging

from bot.context import AppContext
from integrations.graph.auth import StaticTokenCredential
from integrations.graph.client import GraphClient
from integrations.graph.sync import sync_mailboxes
from sandbox.graph_standin import SANDBOX_TOKEN, GraphStandin, seed_demo
from storage.repositories import calendar as repo

log = logging.getLogger("prescreen.sandbox")


def start_sandbox_graph(ctx: AppContext, *, host: str = "127.0.0.1") -> GraphStandin | None:
    """Start the stand-in with demo calendars for every configured mailbox, point ctx.graph at it and
    fill the cache once. Returns the stand-in (call .stop() on shutdown), or None when a real tenant
    is configured."""
    if ctx.settings.graph_configured:
        return None
    with ctx.db.session() as session:
        mailboxes = repo.configured_mailboxes(session, ctx.settings.default_timezone)
    standin = GraphStandin(static_tokens=[SANDBOX_TOKEN]).start(host=host)
    now = ctx.clock.now()
    seed_demo(standin, mailboxes, now)
    ctx.graph = GraphClient(StaticTokenCredential(SANDBOX_TOKEN), base_url=standin.graph_url)
    report = sync_mailboxes(ctx, mailboxes, now)
    log.info("sandbox: Graph stand-in at %s with demo calendars (%s)", standin.graph_url, report)
    return standin
