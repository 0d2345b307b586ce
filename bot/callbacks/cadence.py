"""Follow-up attempts for unanswered candidates: the next business day, at a different time of
day, inside the calling window, until the study's max attempts; then `unreachable`."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.callbacks import windows
from bot.callbacks.service import cancel_open_callbacks, schedule_callback
from bot.context import AppContext
from bot.timeutil import local_to_utc
from storage import audit
from storage.models import Callback, Candidate, Member, Study
from storage.repositories import callbacks as repo
from storage.repositories import candidates as cand_repo

log = logging.getLogger("prescreen.callbacks")

# Morning, afternoon, early evening: each attempt tries the next one (a study's `cadence.times`
# replaces these).
SLOTS = (dt.time(10, 0), dt.time(14, 0), dt.time(18, 0))


def _slots(study: Study) -> list[dt.time]:
    times = (study.options or {}).get("cadence", {}).get("times")
    return sorted(dt.time.fromisoformat(t) for t in times) if times else list(SLOTS)


def _next_slot(slots: list[dt.time], last: dt.time) -> dt.time:
    """The slot after the one nearest the last call's time of day (wrapping round)."""
    def minutes(t: dt.time) -> int:
        return t.hour * 60 + t.minute

    nearest = min(range(len(slots)), key=lambda i: abs(minutes(slots[i]) - minutes(last)))
    return slots[(nearest + 1) % len(slots)]


def next_business_day(day: dt.date, gap: int = 1) -> dt.date:
    for _ in range(gap):
        day += dt.timedelta(days=1)
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
    return day


def plan_next_attempt(study: Study, candidate: Candidate, streak_start: dt.datetime,
                      last_call_at: dt.datetime, streak_len: int) -> dt.datetime:
    """When to try next (UTC): next business day, the next time-of-day slot, and for the last
    allowed attempt no earlier than `min_attempt_days` after the first unanswered call."""
    tz = ZoneInfo(candidate.timezone)
    last_local = last_call_at.astimezone(tz)
    gap = int((study.options or {}).get("cadence", {}).get("gap_business_days", 1))
    day = next_business_day(last_local.date(), gap)
    if streak_len + 1 >= study.max_attempts:
        earliest = (streak_start.astimezone(tz) + dt.timedelta(days=study.min_attempt_days)).date()
        while day < earliest or day.weekday() >= 5:
            day += dt.timedelta(days=1)
    slot = _next_slot(_slots(study), last_local.time())
    due = local_to_utc(dt.datetime.combine(day, slot), candidate.timezone)
    rule = windows.rule_for(study, candidate.region)
    return windows.next_allowed(rule, candidate.timezone, due)


def is_unreachable(study: Study, streak: list[dt.datetime], now: dt.datetime) -> bool:
    return len(streak) >= study.max_attempts and \
        now - min(streak) >= dt.timedelta(days=study.min_attempt_days)


def after_unanswered(ctx: AppContext, session: Session, *, candidate: Candidate, study: Study,
                     owner: Member, actor: str) -> Callback | None:
    """Plan the next attempt, or mark the candidate unreachable. None when no attempt is planned."""
    now = ctx.clock.now()
    streak = [c.called_at for c in cand_repo.unanswered_streak(session, candidate.id)]
    if not streak or candidate.do_not_call:
        return None
    if is_unreachable(study, streak, now):
        mark_unreachable(session, candidate, actor=actor, now=now)
        return None
    due = plan_next_attempt(study, candidate, min(streak), max(streak), len(streak))
    return schedule_callback(ctx, session, candidate=candidate, study=study, owner=owner,
                             due_at=due, call=None, actor=actor, kind="cadence")


def mark_unreachable(session: Session, candidate: Candidate, *, actor: str, now: dt.datetime) -> None:
    before = candidate.status
    candidate.status = "unreachable"
    candidate.unreachable_at = now
    cancel_open_callbacks(session, candidate, actor, "candidate unreachable")
    audit.record(session, actor=actor, action="candidate.unreachable", entity="candidate",
                 entity_id=candidate.ref_code, before={"status": before},
                 after={"status": "unreachable", "attempts": candidate.attempts})


def plan_pending(ctx: AppContext, limit: int = 500) -> tuple[int, int]:
    """The cadence job: unanswered candidates with nothing planned get their next attempt (or
    become unreachable). Returns (planned, unreachable)."""
    planned = unreachable = 0
    with ctx.db.session() as session:
        for cand in repo.needing_cadence(session, limit=limit):
            if cand.owner is None:
                continue
            cb = after_unanswered(ctx, session, candidate=cand, study=cand.study, owner=cand.owner,
                                  actor="scheduler")
            if cb is not None:
                planned += 1
            elif cand.status == "unreachable":
                unreachable += 1
    return planned, unreachable
