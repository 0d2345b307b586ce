"""Business time for stage SLAs: Monday–Friday inside the study's business hours, in the study
time zone. Wall-clock arithmetic in local time, converted with zoneinfo, so a DST change never
makes a working day 7 or 9 hours long."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.timeutil import local_to_utc

DEFAULTS: dict[str, Any] = {
    "first_attempt_hours": 24,
    "approval_business_days": 1,
    "site_contact_business_days": 2,
    "visit_scheduled_days": 10,
    "business_hours": "09:00-17:00",
}


@dataclass(frozen=True)
class SlaConfig:
    timezone: str
    first_attempt_hours: float = 24
    approval_business_days: int = 1
    site_contact_business_days: int = 2
    visit_scheduled_days: int = 10
    open_at: dt.time = dt.time(9, 0)
    close_at: dt.time = dt.time(17, 0)

    @classmethod
    def for_study(cls, timezone: str, options: dict[str, Any] | None) -> SlaConfig:
        """The study's `slas:` options over the defaults (validated at import)."""
        raw = {**DEFAULTS, **((options or {}).get("slas") or {})}
        start, end = (dt.time.fromisoformat(x.strip()) for x in str(raw["business_hours"]).split("-"))
        return cls(timezone=timezone, first_attempt_hours=float(raw["first_attempt_hours"]),
                   approval_business_days=int(raw["approval_business_days"]),
                   site_contact_business_days=int(raw["site_contact_business_days"]),
                   visit_scheduled_days=int(raw["visit_scheduled_days"]), open_at=start, close_at=end)


def _is_workday(day: dt.date) -> bool:
    return day.weekday() < 5


def _open_close(cfg: SlaConfig, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (local_to_utc(dt.datetime.combine(day, cfg.open_at), cfg.timezone),
            local_to_utc(dt.datetime.combine(day, cfg.close_at), cfg.timezone))


def business_start(cfg: SlaConfig, at: dt.datetime) -> dt.datetime:
    """`at` if it is inside business hours, else the next opening (UTC)."""
    day = at.astimezone(ZoneInfo(cfg.timezone)).date()
    for _ in range(10):
        if _is_workday(day):
            opens, closes = _open_close(cfg, day)
            if at < opens:
                return opens
            if at < closes:
                return at
        day += dt.timedelta(days=1)
    raise ValueError("no business day found")  # pragma: no cover - Mon–Fri always has one


def add_workday_hours(cfg: SlaConfig, start: dt.datetime, hours: float) -> dt.datetime:
    """The instant `hours` after `start` on a clock that runs on working days only (UTC).

    The clock starts at the first business moment at or after `start` and pauses over
    weekends: with 09:00–17:00 hours, 24 h from Monday 10:00 is Tuesday 10:00, from Friday
    16:00 is Monday 16:00, and from Saturday 11:00 (or Monday 20:00) it is 24 h after the next
    opening. Local wall-clock arithmetic, so a DST change never moves the deadline's hour."""
    local = business_start(cfg, start).astimezone(ZoneInfo(cfg.timezone)).replace(tzinfo=None)
    remaining = dt.timedelta(hours=hours)
    while True:
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0))
        if remaining < midnight - local:
            return local_to_utc(local + remaining, cfg.timezone)
        remaining -= midnight - local
        day = midnight.date()
        while not _is_workday(day):
            day += dt.timedelta(days=1)
        local = dt.datetime.combine(day, dt.time(0))


def add_business_days(cfg: SlaConfig, start: dt.datetime, days: int) -> dt.datetime:
    """Same local time `days` working days later, counted from the first business moment at or
    after `start` (Friday 16:00 + 1 = Monday 16:00; Saturday 10:00 + 1 = Tuesday 09:00)."""
    at = business_start(cfg, start)
    tz = ZoneInfo(cfg.timezone)
    local = at.astimezone(tz)
    day = local.date()
    for _ in range(days):
        day += dt.timedelta(days=1)
        while not _is_workday(day):
            day += dt.timedelta(days=1)
    return local_to_utc(dt.datetime.combine(day, local.time().replace(tzinfo=None)), cfg.timezone)


def add_days(cfg: SlaConfig, start: dt.datetime, days: int) -> dt.datetime:
    """Calendar days: the same local wall time `days` later (23 or 25 h days at DST changes)."""
    local = start.astimezone(ZoneInfo(cfg.timezone)).replace(tzinfo=None)
    return local_to_utc(local + dt.timedelta(days=days), cfg.timezone)


def in_business_hours(cfg: SlaConfig, tz_name: str, at: dt.datetime) -> bool:
    """Mon–Fri between the configured hours in `tz_name` (a member's own time zone)."""
    local = at.astimezone(ZoneInfo(tz_name))
    return _is_workday(local.date()) and cfg.open_at <= local.time() < cfg.close_at
