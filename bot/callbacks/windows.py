"""Permitted calling windows (design.md §5): federal hours, the study's own window and the
candidate's state rules, whichever is strictest. The rules are data (calling_rules.yaml)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.context import AppContext
from bot.regions import STATES
from storage.models import Candidate, Study

SATURDAY, SUNDAY = 5, 6
STEP = dt.timedelta(minutes=15)


def _t(value: str) -> dt.time:
    hour, minute = value.split(":")
    return dt.time(int(hour), int(minute))


@dataclass(frozen=True)
class CallingRule:
    """Hours per weekday (None = no calls that day) and a rolling 24 h call limit."""

    hours: tuple[tuple[dt.time, dt.time] | None, ...]  # Monday..Sunday
    max_calls_24h: int | None = None
    label: str = ""

    def window_on(self, day: dt.date) -> tuple[dt.time, dt.time] | None:
        return self.hours[day.weekday()]

    def describe(self, day: dt.date) -> str:
        hours = self.window_on(day)
        if hours is None:
            return f"no calls on {day:%A}s"
        return f"{hours[0]:%H:%M}–{hours[1]:%H:%M}"


@lru_cache(maxsize=1)
def _rules() -> dict[str, Any]:
    text = resources.files("bot.callbacks").joinpath("calling_rules.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _intersect(a: tuple[dt.time, dt.time] | None,
               b: tuple[dt.time, dt.time] | None) -> tuple[dt.time, dt.time] | None:
    if a is None or b is None:
        return None
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return (start, end) if start < end else None


def _layer(spec: dict[str, Any]) -> tuple[tuple[dt.time, dt.time] | None, ...]:
    base = (_t(spec["start"]), _t(spec["end"]))
    days: list[tuple[dt.time, dt.time] | None] = [base] * 7
    for name, index in (("saturday", SATURDAY), ("sunday", SUNDAY)):
        if spec.get(name):
            start, end = spec[name]
            days[index] = (_t(start), _t(end))
    if spec.get("no_sunday"):
        days[SUNDAY] = None
    return tuple(days)


def rule_for(study: Study | None, region: str | None) -> CallingRule:
    """The strictest of the federal hours, the study's window and the state's rules."""
    rules = _rules()
    hours = _layer(rules["federal"])
    labels: list[str] = []
    if study is not None and study.calling_window_start and study.calling_window_end:
        study_hours = _layer({"start": study.calling_window_start, "end": study.calling_window_end})
        hours = tuple(_intersect(a, b) for a, b in zip(hours, study_hours, strict=True))
    limit = None
    state = (region or "").upper()
    spec = (rules.get("states") or {}).get(state)
    if spec:
        hours = tuple(_intersect(a, b) for a, b in zip(hours, _layer(spec), strict=True))
        limit = spec.get("max_calls_24h")
        labels.append(f"{STATES.get(state, (state,))[0]} rules")
    return CallingRule(hours=hours, max_calls_24h=limit, label=", ".join(labels))


def _allowed_at(rule: CallingRule, local: dt.datetime) -> bool:
    hours = rule.window_on(local.date())
    return hours is not None and hours[0] <= local.time() < hours[1]


def _day_start(rule: CallingRule, day: dt.date, tz: ZoneInfo) -> dt.datetime | None:
    hours = rule.window_on(day)
    return dt.datetime.combine(day, hours[0], tz) if hours else None


def next_allowed(rule: CallingRule, tz_name: str, after: dt.datetime) -> dt.datetime:
    """The first allowed instant at or after `after` (UTC), on the 15-minute grid."""
    tz = ZoneInfo(tz_name)
    local = after.astimezone(tz)
    if _allowed_at(rule, local):
        return after
    day = local.date()
    for _ in range(8):
        start = _day_start(rule, day, tz)
        if start is not None and start >= local:
            return start.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    raise ValueError("no allowed calling time in a week")  # every day closed: a broken rule file


def previous_allowed(rule: CallingRule, tz_name: str, before: dt.datetime,
                     not_before: dt.datetime) -> dt.datetime | None:
    """The last allowed quarter hour before `before`, if it is after `not_before`."""
    tz = ZoneInfo(tz_name)
    local = before.astimezone(tz)
    day = local.date()
    for _ in range(8):
        hours = rule.window_on(day)
        if hours is not None:
            last = dt.datetime.combine(day, hours[1], tz) - STEP
            if last < local:
                return last.astimezone(dt.UTC) if last.astimezone(dt.UTC) > not_before else None
        day -= dt.timedelta(days=1)
    return None


@dataclass(frozen=True)
class WindowNow:
    """Whether a candidate may be called at this moment, by the same rules as callbacks."""

    open: bool
    local_now: dt.datetime  # the candidate's local time
    opens_at: dt.datetime | None  # when closed: the next allowed moment, candidate's local time
    hours_today: str  # "08:00–21:00" or "no calls on Sundays"
    rule_label: str  # "Florida rules" or ""
    limit_reached: int | None = None  # the 24 h call limit, when that is what closes it


def window_now(study: Study | None, region: str | None, tz_name: str, now: dt.datetime,
               calls_at: list[dt.datetime] | None = None) -> WindowNow:
    """The calling window at `now` for a candidate in `region`/`tz_name`: federal hours, the
    study's window, the state's hours and its 24 h call limit."""
    rule = rule_for(study, region)
    tz = ZoneInfo(tz_name)
    local = now.astimezone(tz)
    hours = rule.describe(local.date())
    if not _allowed_at(rule, local):
        return WindowNow(False, local, next_allowed(rule, tz_name, now).astimezone(tz), hours,
                         rule.label)
    if rule.max_calls_24h:
        recent = sorted(t for t in (calls_at or []) if now - dt.timedelta(hours=24) < t <= now)
        if len(recent) >= rule.max_calls_24h:
            free_at = recent[len(recent) - rule.max_calls_24h] + dt.timedelta(hours=24)
            return WindowNow(False, local, next_allowed(rule, tz_name, free_at).astimezone(tz),
                             hours, rule.label, limit_reached=rule.max_calls_24h)
    return WindowNow(True, local, None, hours, rule.label)


def _when(at: dt.datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%a} {local:%H:%M}"


def window_problem(ctx: AppContext, *, study: Study, candidate: Candidate | None, tz_name: str,
                   due_at: dt.datetime, region: str | None = None,
                   calls_at: list[dt.datetime] | None = None) -> str | None:
    """A user-facing sentence when `due_at` may not be used for a call, else None.

    `calls_at` are the candidate's calls already made or being logged (for the 24 h limit).
    """
    if candidate is not None and candidate.do_not_call:
        return f"{candidate.ref_code} is on do-not-call: no callbacks."
    region = region or (candidate.region if candidate is not None else None)
    rule = rule_for(study, region)
    tz = ZoneInfo(tz_name)
    local = due_at.astimezone(tz)
    now = ctx.clock.now()
    who = f" ({rule.label})" if rule.label else ""
    if not _allowed_at(rule, local):
        after = next_allowed(rule, tz_name, due_at)
        before = previous_allowed(rule, tz_name, due_at, not_before=now)
        options = [_when(t, tz) for t in (before, after) if t is not None]
        return (f"{local:%a %H:%M} is outside calling hours for this candidate{who}: "
                f"{rule.describe(local.date())} their time. "
                f"Nearest allowed: {' or '.join(options)}.")
    if rule.max_calls_24h:
        window = [t for t in (calls_at or []) if due_at - dt.timedelta(hours=24) < t <= due_at]
        if len(window) >= rule.max_calls_24h:
            free_at = sorted(window)[len(window) - rule.max_calls_24h] + dt.timedelta(hours=24)
            suggestion = next_allowed(rule, tz_name, free_at)
            return (f"That would be call {len(window) + 1} in 24 hours; at most "
                    f"{rule.max_calls_24h} are allowed{who}. Earliest: {_when(suggestion, tz)}.")
    return None
