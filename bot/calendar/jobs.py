"""The scheduled calendar sync (every few minutes): refresh the cache handlers read."""

from __future__ import annotations

import logging

from bot.context import AppContext
from integrations.graph.errors import GraphError
from integrations.graph.sync import sync_mailboxes
from storage.repositories import calendar as repo

log = logging.getLogger("prescreen.calendar")


def graph_sync_job(ctx: AppContext) -> str | None:
    """Sync every member and site mailbox through calendarView delta. Quiet when Graph is off."""
    if ctx.graph is None:
        return None
    with ctx.db.session() as session:
        mailboxes = repo.configured_mailboxes(session, ctx.settings.default_timezone)
    if not mailboxes:
        return None
    try:
        report = sync_mailboxes(ctx, mailboxes, ctx.clock.now())
    except GraphError as exc:
        # credentials or the identity provider: the same for every mailbox
        log.warning("calendar sync failed: %s", exc)
        with ctx.db.session() as session:
            for mailbox in mailboxes:
                repo.record_sync_error(session, mailbox, str(exc))
        return f"calendar sync failed: {exc}"
    return str(report)
