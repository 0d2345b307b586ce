"""Calendar use cases. They read only the local cache (storage.repositories.calendar), never Graph,
so they are safe inside Slack's 3-second ack path."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.access import Action, nowhere_text
from bot.context import AppContext
from bot.errors import NotAllowed
from integrations.graph.slots import business_days_window, free_slots, local_day
from integrations.graph.types import Interval, WorkingHours, zone
from storage.models import CalendarEvent, GraphSyncState, Member, Site
from storage.repositories import calendar as repo
from storage.repositories.studies import get_member

STALE_AFTER = dt.timedelta(minutes=30)
BUSY_LABEL = "Busy"

# status values of CalendarDay / SiteSlots
OK = "ok"
STALE = "stale"
NOT_SYNCED = "not_synced"
NO_MAILBOX = "no_mailbox"
NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class CalendarItem:
    start: dt.datetime  # UTC
    end: dt.datetime
    title: str  # the subject, or "Busy" for private events
    all_day: bool = False
    start_date: dt.date | None = None
    end_date: dt.date | None = None  # exclusive
    join_url: str | None = None
    show_as: str = "busy"
    private: bool = False


@dataclass
class CalendarDay:
    timezone: str
    day: dt.date
    status: str
    mailbox: str | None = None
    events: list[CalendarItem] = field(default_factory=list)
    free: list[Interval] = field(default_factory=list)
    synced_at: dt.datetime | None = None
    last_error: str | None = None


@dataclass
class SiteSlots:
    site_key: str
    site_name: str
    timezone: str
    status: str
    mailbox: str | None = None
    slots: list[Interval] = field(default_factory=list)
    until: dt.datetime | None = None
    synced_at: dt.datetime | None = None


@dataclass(frozen=True)
class BusyBlock:
    start: dt.datetime
    end: dt.datetime
    title: str
    all_day: bool = False


def _item(ev: CalendarEvent) -> CalendarItem:
    private = ev.sensitivity in ("private", "confidential")
    return CalendarItem(
        start=ev.start_at,
        end=ev.end_at,
        title=BUSY_LABEL if private or not ev.subject else ev.subject,
        all_day=ev.is_all_day,
        start_date=ev.start_date,
        end_date=ev.end_date,
        join_url=ev.join_url,
        show_as=ev.show_as,
        private=private,
    )


def _status(ctx: AppContext, state: GraphSyncState | None, now: dt.datetime) -> str:
    if state is None or state.synced_at is None:
        return NOT_CONFIGURED if ctx.graph is None else NOT_SYNCED
    if now - state.synced_at > STALE_AFTER:
        return STALE
    return OK


def my_calendar(
    ctx: AppContext, slack_user_id: str, now: dt.datetime, *, min_free_minutes: int = 30
) -> CalendarDay:
    """The rest of today in the member's zone: events not yet over, and free slots in working hours."""
    with ctx.db.session() as session:
        member = get_member(session, slack_user_id)
        if member is None or not member.active:
            raise NotAllowed(nowhere_text([], Action.VIEW_CALENDAR))
        tz = member.timezone
        day_start, day_end = local_day(now, tz)
        day = now.astimezone(dt.UTC).astimezone(zone(tz)).date()
        if not member.mailbox:
            return CalendarDay(tz, day, NO_MAILBOX)
        state = repo.sync_state(session, member.mailbox)
        result = CalendarDay(
            tz,
            day,
            _status(ctx, state, now),
            mailbox=member.mailbox,
            synced_at=state.synced_at if state else None,
            last_error=state.last_error if state else None,
        )
        if result.status in (NOT_SYNCED, NOT_CONFIGURED):
            return result
        rows = repo.events_between(session, member.mailbox, day_start, day_end, timezone=tz)
        busy = repo.busy_intervals(session, member.mailbox, day_start, day_end, timezone=tz)
    result.events = [_item(e) for e in rows if e.is_all_day or e.end_at > now]
    result.free = free_slots(
        [Interval(s, e) for s, e in busy],
        max(now, day_start),
        day_end,
        WorkingHours.default(tz),
        min_minutes=min_free_minutes,
    )
    return result


def site_free_slots(
    ctx: AppContext, site: Site, now: dt.datetime, business_days: int = 10, *, min_minutes: int = 60
) -> SiteSlots:
    """Free slots of the site mailbox in working hours (Mon–Fri 09:00–17:00 site time) for the next
    `business_days` working days, from the cache."""
    result = SiteSlots(site.key, site.name, site.timezone, NO_MAILBOX, mailbox=site.mailbox)
    if not site.mailbox:
        return result
    start, end = business_days_window(now, site.timezone, business_days)
    result.until = end
    with ctx.db.session() as session:
        state = repo.sync_state(session, site.mailbox)
        result.status = _status(ctx, state, now)
        result.synced_at = state.synced_at if state else None
        if result.status in (NOT_SYNCED, NOT_CONFIGURED):
            return result
        busy = repo.busy_intervals(session, site.mailbox, start, end, timezone=site.timezone)
    result.slots = free_slots(
        [Interval(s, e) for s, e in busy],
        start,
        end,
        WorkingHours.default(site.timezone),
        min_minutes=min_minutes,
    )
    return result


def callback_collision(
    ctx: AppContext, member: Member, due_at: dt.datetime, duration: dt.timedelta = dt.timedelta(minutes=15)
) -> BusyBlock | None:
    """The busy block in the member's Outlook calendar that a callback at `due_at` would hit, if any."""
    if not member.mailbox:
        return None
    end = due_at + duration
    with ctx.db.session() as session:
        events = repo.busy_events(session, member.mailbox, due_at, end, timezone=member.timezone)
    for ev in events:
        item = _item(ev)
        if ev.is_all_day and ev.start_date and ev.end_date:
            tz = zone(member.timezone)
            s = dt.datetime.combine(ev.start_date, dt.time(), tz).astimezone(dt.UTC)
            e = dt.datetime.combine(ev.end_date, dt.time(), tz).astimezone(dt.UTC)
        else:
            s, e = ev.start_at, ev.end_at
        if s < end and e > due_at:
            return BusyBlock(s, e, item.title, ev.is_all_day)
    return None
