"""Plain values parsed from Graph responses (no Graph JSON leaks past this module)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.graph.tz import to_iana
from storage.vocabulary import BUSY_SHOW_AS

BUSY_STATUSES = frozenset(BUSY_SHOW_AS)
HIDDEN_SENSITIVITIES = frozenset({"private", "confidential"})

EVENT_SELECT = (
    "id,subject,start,end,isAllDay,showAs,sensitivity,isCancelled,isOnlineMeeting,onlineMeeting,"
    "type,seriesMasterId"
)


@dataclass(frozen=True)
class Interval:
    start: dt.datetime
    end: dt.datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


@dataclass(frozen=True)
class GraphEvent:
    """One occurrence or single event. Private events carry no subject."""

    id: str
    subject: str | None
    start: dt.datetime  # aware UTC; for all-day events local midnight of start_date in the mailbox zone
    end: dt.datetime
    is_all_day: bool = False
    start_date: dt.date | None = None
    end_date: dt.date | None = None  # exclusive, as Graph gives it
    show_as: str = "busy"
    sensitivity: str = "normal"
    is_cancelled: bool = False
    join_url: str | None = None
    type: str = "singleInstance"

    @property
    def is_private(self) -> bool:
        return self.sensitivity in HIDDEN_SENSITIVITIES

    def row(self) -> dict[str, Any]:
        """Column values for storage.models.CalendarEvent."""
        return {
            "event_id": self.id,
            "subject": None if self.is_private else self.subject,
            "start_at": self.start,
            "end_at": self.end,
            "is_all_day": self.is_all_day,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "show_as": self.show_as,
            "sensitivity": self.sensitivity,
            "is_cancelled": self.is_cancelled,
            "join_url": self.join_url,
        }


@dataclass
class DeltaResult:
    """The outcome of one delta round for one mailbox."""

    mailbox: str
    events: dict[str, GraphEvent] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    delta_link: str | None = None
    full: bool = False  # a full round: the result replaces everything cached for the window
    calls: int = 0


@dataclass(frozen=True)
class WorkingHours:
    days: frozenset[int]  # Monday=0 … Sunday=6
    start: dt.time
    end: dt.time
    timezone: str

    @classmethod
    def default(cls, timezone: str) -> WorkingHours:
        return cls(frozenset(range(5)), dt.time(9), dt.time(17), timezone)


@dataclass
class ScheduleInfo:
    schedule_id: str
    busy: list[Interval] = field(default_factory=list)
    working_hours: WorkingHours | None = None
    availability_view: str = ""
    error: str | None = None


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_graph_datetime(value: dict[str, Any], default_tz: str = "UTC") -> dt.datetime:
    """A Graph dateTimeTimeZone ({"dateTime": "2025-03-10T14:00:00.0000000", "timeZone": "UTC"})."""
    raw = str(value["dateTime"])
    if "." in raw:
        head, frac = raw.split(".", 1)
        raw = f"{head}.{frac[:6]}"
    naive = dt.datetime.fromisoformat(raw.rstrip("Z"))
    if naive.tzinfo is not None:
        return naive.astimezone(dt.UTC)
    tz = zone(value.get("timeZone") or default_tz, default_tz)
    # A wall-clock time read in its zone: fold=0 picks the first of a repeated hour.
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def zone(name: str, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (to_iana(name), to_iana(fallback), "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def parse_event(item: dict[str, Any], mailbox_tz: str = "UTC") -> GraphEvent:
    is_all_day = bool(item.get("isAllDay"))
    start_date = end_date = None
    if is_all_day:
        # All-day events are floating dates: take the calendar date, never convert an instant.
        start_date = dt.date.fromisoformat(str(item["start"]["dateTime"])[:10])
        end_date = dt.date.fromisoformat(str(item["end"]["dateTime"])[:10])
        if end_date <= start_date:
            end_date = start_date + dt.timedelta(days=1)
        tz = zone(mailbox_tz)
        start = dt.datetime.combine(start_date, dt.time(), tz).astimezone(dt.UTC)
        end = dt.datetime.combine(end_date, dt.time(), tz).astimezone(dt.UTC)
    else:
        start = parse_graph_datetime(item["start"])
        end = parse_graph_datetime(item["end"])
    meeting = item.get("onlineMeeting") or {}
    join_url = meeting.get("joinUrl") if isinstance(meeting, dict) else None
    sensitivity = str(item.get("sensitivity") or "normal")
    subject = item.get("subject")
    return GraphEvent(
        id=str(item["id"]),
        subject=None if sensitivity in HIDDEN_SENSITIVITIES else (subject or None),
        start=start,
        end=end,
        is_all_day=is_all_day,
        start_date=start_date,
        end_date=end_date,
        show_as=str(item.get("showAs") or "busy"),
        sensitivity=sensitivity,
        is_cancelled=bool(item.get("isCancelled")),
        join_url=join_url or None,
        type=str(item.get("type") or "singleInstance"),
    )


def parse_working_hours(raw: dict[str, Any] | None, fallback_tz: str) -> WorkingHours | None:
    if not raw:
        return None
    try:
        days = frozenset(WEEKDAYS.index(d.lower()) for d in raw.get("daysOfWeek") or [])
        start = dt.time.fromisoformat(str(raw["startTime"])[:8])
        end = dt.time.fromisoformat(str(raw["endTime"])[:8])
    except (KeyError, ValueError):
        return None
    tz_raw = raw.get("timeZone") or {}
    name = tz_raw.get("name") if isinstance(tz_raw, dict) else str(tz_raw)
    iana = to_iana(name or "") or fallback_tz
    return WorkingHours(days or frozenset(range(5)), start, end, iana)


def parse_schedule(
    item: dict[str, Any], interval_minutes: int, window_start: dt.datetime, fallback_tz: str
) -> ScheduleInfo:
    info = ScheduleInfo(schedule_id=str(item.get("scheduleId") or ""))
    if item.get("error"):
        err = item["error"]
        info.error = str(err.get("responseCode") or err.get("message") or "error")[:200]
        return info
    info.availability_view = str(item.get("availabilityView") or "")
    info.working_hours = parse_working_hours(item.get("workingHours"), fallback_tz)
    if "scheduleItems" in item:
        for s in item.get("scheduleItems") or []:
            if str(s.get("status", "busy")).lower() not in BUSY_STATUSES:
                continue
            info.busy.append(Interval(parse_graph_datetime(s["start"]), parse_graph_datetime(s["end"])))
    else:
        step = dt.timedelta(minutes=interval_minutes)
        for i, ch in enumerate(info.availability_view):
            if ch in "123":
                info.busy.append(Interval(window_start + i * step, window_start + (i + 1) * step))
    return info
