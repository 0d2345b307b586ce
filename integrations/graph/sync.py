"""Keep a local cache of the next days of calendars through calendarView delta.

One delta round per mailbox per run; the whole `@odata.deltaLink` is stored per mailbox in
GraphSyncState. A window is [yesterday 00:00 UTC, +SYNC_DAYS+3 days); when it no longer covers the
next SYNC_DAYS days a new full round starts with a fresh window.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from integrations.graph.client import DeltaSpec, GraphClient
from integrations.graph.errors import GraphConfigError, GraphError
from storage.db import Database
from storage.repositories import calendar as repo

log = logging.getLogger("prescreen.graph.sync")

SYNC_DAYS = 14
WINDOW_EXTRA_DAYS = 3
KEEP_PAST = dt.timedelta(days=2)


class SyncDeps(Protocol):
    db: Database
    graph: GraphClient | None


@dataclass
class SyncReport:
    mailboxes: int = 0
    full: int = 0
    incremental: int = 0
    upserted: int = 0
    deleted: int = 0
    graph_calls: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = (
            f"{self.mailboxes} mailboxes ({self.full} full, {self.incremental} incremental), "
            f"{self.upserted} events updated, {self.deleted} removed, {self.graph_calls} Graph calls"
        )
        if self.failed:
            text += f", {len(self.failed)} failed"
        return text


def _window(now: dt.datetime, days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine((now.astimezone(dt.UTC) - dt.timedelta(days=1)).date(), dt.time(), dt.UTC)
    return start, start + dt.timedelta(days=days + 1 + WINDOW_EXTRA_DAYS)


def sync_mailboxes(
    deps: SyncDeps,
    mailboxes: Mapping[str, str] | Iterable[str],
    now: dt.datetime,
    *,
    days: int = SYNC_DAYS,
    default_timezone: str = "UTC",
) -> SyncReport:
    """Bring the CalendarEvent cache of `mailboxes` (address → IANA zone, or addresses) up to date."""
    graph = deps.graph
    if graph is None:
        raise GraphConfigError("Microsoft Graph is not configured (MS_TENANT_ID, MS_CLIENT_ID, credential)")
    if isinstance(mailboxes, Mapping):
        zones = {repo.normalize(m): tz for m, tz in mailboxes.items()}
    else:
        zones = {repo.normalize(m): default_timezone for m in mailboxes}
    report = SyncReport(mailboxes=len(zones))
    if not zones:
        return report
    horizon = now + dt.timedelta(days=days)
    specs: list[DeltaSpec] = []
    with deps.db.session() as session:
        for mb, tz in zones.items():
            state = repo.sync_state(session, mb)
            if (
                state is not None
                and state.delta_link
                and state.window_start
                and state.window_end
                and state.window_start <= now
                and state.window_end >= horizon
            ):
                specs.append(DeltaSpec(mb, state.window_start, state.window_end, state.delta_link, tz))
            else:
                start, end = _window(now, days)
                specs.append(DeltaSpec(mb, start, end, None, tz))
    before = graph.stats.requests
    results = graph.delta_many(specs)
    report.graph_calls = graph.stats.requests - before
    for spec in specs:
        result = results.get(spec.mailbox)
        with deps.db.session() as session:
            if result is None or isinstance(result, GraphError):
                message = str(result) if result is not None else "no result"
                report.failed[spec.mailbox] = message
                repo.record_sync_error(session, spec.mailbox, message)
                log.warning("calendar sync failed for %s: %s", spec.mailbox, message)
                continue
            rows = [e.row() for e in result.events.values()]
            if result.full:
                report.full += 1
                report.upserted += repo.replace_all(session, spec.mailbox, rows)
            else:
                report.incremental += 1
                up, gone = repo.apply_changes(session, spec.mailbox, rows, result.removed)
                report.upserted += up
                report.deleted += gone
            repo.save_sync_state(
                session,
                spec.mailbox,
                delta_link=result.delta_link,
                window_start=spec.start,
                window_end=spec.end,
                synced_at=now,
            )
    with deps.db.session() as session:
        repo.purge_ended_before(session, now - KEEP_PAST)
    return report
