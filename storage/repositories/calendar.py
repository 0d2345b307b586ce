"""Cached Outlook calendar events (CalendarEvent) and delta sync state (GraphSyncState).

Handlers read calendars only from here; the Graph sync job is the only writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import CalendarEvent, GraphSyncState, Member, Site
from storage.vocabulary import BUSY_SHOW_AS


def normalize(mailbox: str) -> str:
    return mailbox.strip().lower()


# ----- sync state -----


def sync_state(session: Session, mailbox: str) -> GraphSyncState | None:
    return session.get(GraphSyncState, normalize(mailbox))


def save_sync_state(
    session: Session,
    mailbox: str,
    *,
    delta_link: str | None,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    synced_at: dt.datetime | None,
    last_error: str | None = None,
) -> GraphSyncState:
    state = sync_state(session, mailbox)
    if state is None:
        state = GraphSyncState(mailbox=normalize(mailbox))
        session.add(state)
    state.delta_link = delta_link
    state.window_start = window_start
    state.window_end = window_end
    state.synced_at = synced_at
    state.last_error = last_error
    session.flush()
    return state


def record_sync_error(session: Session, mailbox: str, error: str) -> None:
    state = sync_state(session, mailbox)
    if state is None:
        state = GraphSyncState(mailbox=normalize(mailbox))
        session.add(state)
    state.last_error = error[:300]
    session.flush()


def configured_mailboxes(session: Session, default_timezone: str = "UTC") -> dict[str, str]:
    """Every mailbox set on an active member or site, with the owner's IANA timezone."""
    out: dict[str, str] = {}
    for mailbox, tz in session.execute(
        select(Site.mailbox, Site.timezone).where(Site.mailbox.is_not(None), Site.active.is_(True))
    ):
        if mailbox and mailbox.strip():
            out.setdefault(normalize(mailbox), tz or default_timezone)
    for mailbox, tz in session.execute(
        select(Member.mailbox, Member.timezone).where(Member.mailbox.is_not(None), Member.active.is_(True))
    ):
        if mailbox and mailbox.strip():
            out[normalize(mailbox)] = tz or default_timezone
    return dict(sorted(out.items()))


# ----- writes (the sync job) -----


def apply_changes(
    session: Session, mailbox: str, upserts: Iterable[Mapping[str, Any]], removed: Iterable[str] = ()
) -> tuple[int, int]:
    """Insert or update events by (mailbox, event_id); delete removed ids. Returns (upserted, deleted)."""
    mb = normalize(mailbox)
    rows = {str(r["event_id"]): r for r in upserts}
    removed_ids = {str(i) for i in removed} - set(rows)
    existing = (
        {
            e.event_id: e
            for e in session.scalars(
                select(CalendarEvent).where(
                    CalendarEvent.mailbox == mb, CalendarEvent.event_id.in_(list(rows) or [""])
                )
            )
        }
        if rows
        else {}
    )
    for event_id, values in rows.items():
        ev = existing.get(event_id)
        if ev is None:
            session.add(CalendarEvent(mailbox=mb, **dict(values)))
        else:
            for k, v in values.items():
                if getattr(ev, k) != v:
                    setattr(ev, k, v)
    deleted = 0
    if removed_ids:
        ids = list(removed_ids)
        for i in range(0, len(ids), 500):
            res = session.execute(
                delete(CalendarEvent).where(
                    CalendarEvent.mailbox == mb, CalendarEvent.event_id.in_(ids[i : i + 500])
                )
            )
            deleted += res.rowcount or 0  # type: ignore[attr-defined]
    session.flush()
    return len(rows), deleted


def replace_all(session: Session, mailbox: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """A full resync: the mailbox's cache becomes exactly `rows`."""
    mb = normalize(mailbox)
    rows = list(rows)
    keep = {str(r["event_id"]) for r in rows}
    stale = [
        e
        for e in session.scalars(select(CalendarEvent.event_id).where(CalendarEvent.mailbox == mb))
        if e not in keep
    ]
    apply_changes(session, mb, rows, stale)
    return len(rows)


def purge_ended_before(session: Session, before: dt.datetime) -> int:
    res = session.execute(delete(CalendarEvent).where(CalendarEvent.end_at < before))
    return res.rowcount or 0  # type: ignore[attr-defined]


# ----- reads (handlers and workflows) -----


def events_between(
    session: Session,
    mailbox: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    timezone: str = "UTC",
    include_cancelled: bool = False,
) -> list[CalendarEvent]:
    """Events overlapping [start, end). All-day events match by date in `timezone`."""
    margin = dt.timedelta(days=1)
    stmt = select(CalendarEvent).where(
        CalendarEvent.mailbox == normalize(mailbox),
        CalendarEvent.start_at < end + margin,
        CalendarEvent.end_at > start - margin,
    )
    if not include_cancelled:
        stmt = stmt.where(CalendarEvent.is_cancelled.is_(False))
    tz = ZoneInfo(timezone)
    first_day, last_day = (
        start.astimezone(tz).date(),
        (end - dt.timedelta(microseconds=1)).astimezone(tz).date(),
    )
    out = []
    for ev in session.scalars(stmt.order_by(CalendarEvent.start_at, CalendarEvent.event_id)):
        if ev.is_all_day and ev.start_date and ev.end_date:
            if ev.start_date <= last_day and ev.end_date > first_day:
                out.append(ev)
        elif ev.start_at < end and ev.end_at > start:
            out.append(ev)
    out.sort(key=lambda e: (not e.is_all_day, e.start_at, e.event_id))
    return out


def busy_events(
    session: Session, mailbox: str, start: dt.datetime, end: dt.datetime, *, timezone: str = "UTC"
) -> list[CalendarEvent]:
    """Events that make the mailbox busy (busy, tentative, out of office), cancelled ones excluded."""
    return [
        e
        for e in events_between(session, mailbox, start, end, timezone=timezone)
        if e.show_as in BUSY_SHOW_AS
    ]


def busy_intervals(
    session: Session, mailbox: str, start: dt.datetime, end: dt.datetime, *, timezone: str = "UTC"
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Busy time as UTC instants; an all-day event spans its dates' local midnights in `timezone`."""
    tz = ZoneInfo(timezone)
    out = []
    for e in busy_events(session, mailbox, start, end, timezone=timezone):
        if e.is_all_day and e.start_date and e.end_date:
            s = dt.datetime.combine(e.start_date, dt.time(), tz).astimezone(dt.UTC)
            f = dt.datetime.combine(e.end_date, dt.time(), tz).astimezone(dt.UTC)
            out.append((s, f))
        else:
            out.append((e.start_at, e.end_at))
    return out


