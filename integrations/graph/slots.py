"""Free slots: working-hour windows (DST-aware, per local day) minus busy intervals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from integrations.graph.types import Interval, WorkingHours, zone


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: (i.start, i.end)):
        if iv.end <= iv.start:
            continue
        if out and iv.start <= out[-1].end:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return out


def _local_instant(day: dt.date, t: dt.time, tz_name: str) -> dt.datetime:
    """Wall-clock time on `day` in `tz_name` as UTC; a time skipped by DST moves forward."""
    tz = zone(tz_name)
    local = dt.datetime.combine(day, t)
    first = local.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    if first.astimezone(tz).replace(tzinfo=None) != local:
        return local.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    return first


def working_windows(start: dt.datetime, end: dt.datetime, hours: WorkingHours) -> list[Interval]:
    """The working-hour windows overlapping [start, end), clipped to it."""
    tz = zone(hours.timezone)
    day = start.astimezone(tz).date() - dt.timedelta(days=1)
    last = end.astimezone(tz).date()
    out: list[Interval] = []
    while day <= last:
        if day.weekday() in hours.days:
            ws = _local_instant(day, hours.start, hours.timezone)
            end_day = day + dt.timedelta(days=1) if hours.end <= hours.start else day
            we = _local_instant(end_day, hours.end, hours.timezone)
            s, e = max(ws, start), min(we, end)
            if s < e:
                out.append(Interval(s, e))
        day += dt.timedelta(days=1)
    return out


def free_slots(
    busy: Iterable[Interval],
    start: dt.datetime,
    end: dt.datetime,
    hours: WorkingHours,
    *,
    min_minutes: int = 30,
) -> list[Interval]:
    """Free intervals inside working hours between `start` and `end` (UTC), each ≥ min_minutes."""
    blocks = merge(busy)
    out: list[Interval] = []
    for window in working_windows(start, end, hours):
        cursor = window.start
        for b in blocks:
            if b.end <= cursor or b.start >= window.end:
                continue
            if b.start > cursor:
                out.append(Interval(cursor, b.start))
            cursor = max(cursor, b.end)
            if cursor >= window.end:
                break
        if cursor < window.end:
            out.append(Interval(cursor, window.end))
    return [s for s in out if s.end - s.start >= dt.timedelta(minutes=min_minutes)]


def business_days_window(
    now: dt.datetime, tz_name: str, business_days: int, days: frozenset[int] = frozenset(range(5))
) -> tuple[dt.datetime, dt.datetime]:
    """From `now` to the end of the n-th working day (today counts when it is one)."""
    tz = zone(tz_name)
    day = now.astimezone(tz).date()
    counted = 0
    while True:
        if day.weekday() in days:
            counted += 1
            if counted >= business_days:
                break
        day += dt.timedelta(days=1)
    return now, _local_instant(day + dt.timedelta(days=1), dt.time(), tz_name)


def local_day(now: dt.datetime, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the local calendar day containing `now`, as UTC instants."""
    day = now.astimezone(zone(tz_name)).date()
    return (
        _local_instant(day, dt.time(), tz_name),
        _local_instant(day + dt.timedelta(days=1), dt.time(), tz_name),
    )


