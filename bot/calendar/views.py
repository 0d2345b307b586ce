"""Block Kit for calendars: `/prescreen calendar`, the "your day" DM section, visit-slot options and
the callback collision warning. Within Slack's limits (≤50 blocks, ≤3000 chars per section)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.blocks import MAX_MESSAGE_BLOCKS, Block, context, divider, escape, header, option, section
from bot.calendar.workflow import (
    NO_MAILBOX,
    NOT_CONFIGURED,
    NOT_SYNCED,
    STALE,
    BusyBlock,
    CalendarDay,
    CalendarItem,
    SiteSlots,
)
from integrations.graph.types import Interval, zone

MAX_SELECT_OPTIONS = 100
MAX_EVENT_BLOCKS = 30


def _t(value: dt.datetime, tz: str) -> str:
    local = value.astimezone(zone(tz))
    return local.strftime("%I:%M %p").lstrip("0")


def _span(start: dt.datetime, end: dt.datetime, tz: str) -> str:
    return f"{_t(start, tz)}–{_t(end, tz)}"


def event_line(item: CalendarItem, tz: str) -> str:
    when = "All day" if item.all_day else _span(item.start, item.end, tz)
    title = escape(item.title)
    if item.private:
        title = f"_{title}_"
    line = f"*{when}*  {title}"
    if item.show_as in ("tentative", "oof"):
        line += f"  ({'tentative' if item.show_as == 'tentative' else 'out of office'})"
    url = item.join_url or ""
    if url.startswith("https://") and not any(ch in url for ch in "<>| \n") and not item.private:
        line += f"  <{escape(url)}|Join Teams meeting>"
    return line


def slots_text(slots: Sequence[Interval], tz: str, limit: int = 12) -> str:
    if not slots:
        return "No free time left in working hours."
    parts = [_span(s.start, s.end, tz) for s in slots[:limit]]
    more = f" (+{len(slots) - limit} more)" if len(slots) > limit else ""
    return ", ".join(parts) + more


def _status_note(status: str, synced_at: dt.datetime | None, tz: str) -> str | None:
    if status == NO_MAILBOX:
        return "No Outlook mailbox is linked to your profile; ask an admin to add it."
    if status == NOT_CONFIGURED:
        return "Outlook calendars are not connected for this workspace."
    if status == NOT_SYNCED:
        return "Your calendar hasn't been read yet; try again in a few minutes."
    if status == STALE and synced_at is not None:
        return f":warning: Calendar unavailable since {_t(synced_at, tz)}; showing what was last read."
    return None


def calendar_blocks(day: CalendarDay) -> list[Block]:
    """`/prescreen calendar`: today's remaining events and free slots."""
    blocks: list[Block] = [header(f"Your calendar — {day.day:%a %b} {day.day.day}")]
    note = _status_note(day.status, day.synced_at, day.timezone)
    if note:
        blocks.append(section(note))
    if day.status in (NO_MAILBOX, NOT_CONFIGURED, NOT_SYNCED):
        return blocks
    if day.events:
        shown = day.events[:MAX_EVENT_BLOCKS]
        for item in shown:
            blocks.append(section(event_line(item, day.timezone)))
        if len(day.events) > len(shown):
            blocks.append(context(f"…and {len(day.events) - len(shown)} more in Outlook."))
    else:
        blocks.append(section("Nothing else on your calendar today."))
    blocks.append(divider())
    blocks.append(section(f"*Free today:* {slots_text(day.free, day.timezone)}"))
    if day.synced_at:
        blocks.append(context(f"From Outlook, read at {_t(day.synced_at, day.timezone)} ({day.timezone})."))
    return blocks[:MAX_MESSAGE_BLOCKS]


def your_day_blocks(day: CalendarDay, limit: int = 8) -> list[Block]:
    """The meetings part of the "your day" DM (empty when there is nothing to say)."""
    if day.status in (NO_MAILBOX, NOT_CONFIGURED, NOT_SYNCED):
        return []
    timed = [e for e in day.events if not e.all_day]
    if not day.events:
        return [section("*Meetings today:* none")]
    lines = [event_line(e, day.timezone) for e in day.events[:limit]]
    if len(day.events) > limit:
        lines.append(f"…and {len(day.events) - limit} more")
    blocks = [section(f"*Meetings today ({len(timed)}):*\n" + "\n".join(lines))]
    if day.status == STALE:
        blocks.append(context("Calendar may be out of date."))
    return blocks


def visit_slot_options(slots: SiteSlots, *, slot_minutes: int = 60) -> list[Block]:
    """static_select options (value: ISO start in UTC) of bookable starts in the site's free slots."""
    out: list[Block] = []
    step = dt.timedelta(minutes=slot_minutes)
    for s in slots.slots:
        t = s.start
        while t + step <= s.end and len(out) < MAX_SELECT_OPTIONS:
            local = t.astimezone(zone(slots.timezone))
            label = f"{local:%a %b} {local.day}, {_t(t, slots.timezone)}"
            out.append(option(label, t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")))
            t += step
    return out


def site_slots_blocks(slots: SiteSlots) -> list[Block]:
    note = _status_note(slots.status, slots.synced_at, slots.timezone)
    if slots.status in (NO_MAILBOX, NOT_CONFIGURED, NOT_SYNCED):
        if slots.status == NO_MAILBOX:
            note = f"{escape(slots.site_name)} has no scheduling mailbox; agree a visit time with the site."
        return [context(note or "")]
    by_day: dict[dt.date, list[Interval]] = {}
    tz = zone(slots.timezone)
    for s in slots.slots:
        by_day.setdefault(s.start.astimezone(tz).date(), []).append(s)
    lines = [
        f"*{d:%a %b} {d.day}:* {slots_text(v, slots.timezone, limit=6)}" for d, v in sorted(by_day.items())
    ]
    text = "\n".join(lines) if lines else "No free time in the next working days."
    blocks = [section(f"*{escape(slots.site_name)} free slots* ({slots.timezone})\n{text}")]
    if note:
        blocks.append(context(note))
    return blocks


def collision_warning(block: BusyBlock, tz: str) -> str:
    """Text for the callback modal when the time hits a busy block in Outlook."""
    when = "all day" if block.all_day else _span(block.start, block.end, tz)
    return f":warning: This overlaps *{escape(block.title)}* ({when}) in your Outlook calendar."
