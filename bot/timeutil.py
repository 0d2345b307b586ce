"""Local wall-clock time ↔ UTC, deterministic across DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def local_to_utc(local: dt.datetime, tz_name: str) -> dt.datetime:
    """Interpret a naive wall-clock time in `tz_name`.

    A time that does not exist (spring forward, e.g. 02:30) moves forward by the gap (03:30);
    a time that happens twice (fall back, e.g. 01:30) means the first one (daylight time).
    """
    # PEP 495: fold=0 reads a wall time with the offset in force before the transition, which
    # for a gap lands after it (02:30 EST = 03:30 EDT) and for an overlap is the first one.
    return local.replace(tzinfo=ZoneInfo(tz_name), fold=0).astimezone(dt.UTC)


def dst_note(local: dt.datetime, tz_name: str) -> str | None:
    """Explain how a wall-clock time was read on a DST change day, or None if unambiguous."""
    tz = ZoneInfo(tz_name)
    utc = local_to_utc(local, tz_name)
    back = utc.astimezone(tz)
    if back.replace(tzinfo=None) != local:
        return f"{local:%H:%M} does not exist that day (clocks spring forward); using {back:%H:%M}."
    a = local.replace(tzinfo=tz, fold=0).utcoffset()
    b = local.replace(tzinfo=tz, fold=1).utcoffset()
    if a != b:
        return f"{local:%H:%M} happens twice that day (clocks fall back); using the first, {back:%H:%M %Z}."
    return None
