"""When a digest is due, and sending it exactly once per scope and period.

Every tick computes, per scope, the most recent moment it was due (a local wall-clock time
in the study's or member's zone) and the period that moment stands for. The run is claimed
by inserting its DigestRun row (unique scope + period) in the same transaction as the outbox
rows that carry it, so any number of workers send it once. A worker that was down sends the
missed run once when it comes back, marked late; more than 12 hours late it is skipped and
logged instead (a "yesterday" digest at night helps nobody).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import outbox
from bot.context import AppContext
from bot.timeutil import local_to_utc
from integrations import metrics
from storage import vocabulary
from storage.models import Study
from storage.repositories import digests as repo

log = logging.getLogger("prescreen.digests")

LATE_AFTER = dt.timedelta(minutes=15)
SKIP_AFTER = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Outgoing:
    """One Slack message (or file) a run sends."""

    kind: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    study_key: str | None = None
    file: tuple[str, bytes, str] | None = None  # filename, bytes, title


@dataclass(frozen=True)
class DueRun:
    scope: str  # "daily:ALZ", "weekly:ALZ", "yourday:U0COORD01"
    period: str  # "2026-11-21", "2026-W47"
    due_at: dt.datetime  # UTC
    day: dt.date  # the local date the run is due on


@dataclass
class TickResult:
    sent: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{name} {', '.join(items)}" for name, items in
                 (("sent", self.sent), ("late", self.late), ("skipped", self.skipped))
                 if items]
        return "; ".join(parts)


def local_due(day: dt.date, hhmm: str, tz: str) -> dt.datetime:
    """`hhmm` on `day` in `tz`, as UTC (a time in a DST gap moves forward by the gap)."""
    return local_to_utc(dt.datetime.combine(day, dt.time.fromisoformat(hhmm)), tz)


def last_daily(now: dt.datetime, hhmm: str, tz: str) -> tuple[dt.date, dt.datetime]:
    """The latest local date whose `hhmm` has passed, and that moment in UTC."""
    today = now.astimezone(ZoneInfo(tz)).date()
    for day in (today, today - dt.timedelta(days=1)):
        due = local_due(day, hhmm, tz)
        if due <= now:
            return day, due
    day = today - dt.timedelta(days=2)
    return day, local_due(day, hhmm, tz)


def last_weekly(now: dt.datetime, weekday: str, hhmm: str, tz: str) -> tuple[dt.date, dt.datetime]:
    """The latest `weekday` `hhmm` (local) that has passed, and that moment in UTC."""
    want = vocabulary.WEEKDAYS.index(weekday)
    today = now.astimezone(ZoneInfo(tz)).date()
    day = today - dt.timedelta(days=(today.weekday() - want) % 7)
    due = local_due(day, hhmm, tz)
    if due > now:
        day -= dt.timedelta(days=7)
        due = local_due(day, hhmm, tz)
    return day, due


def message_key(scope: str, period: str, index: int, *, resend: str | None = None) -> str:
    base = f"digest:{scope}:{period}"
    if resend:
        base += f":resend:{resend}"
    return f"{base}:{index}"


def enqueue(ctx: AppContext, session: Session, run_scope: str, period: str,
            messages: list[Outgoing], *, resend: str | None = None) -> int:
    """Queue the run's messages in the caller's transaction (idempotent by key)."""
    queued = 0
    for i, m in enumerate(messages):
        key = message_key(run_scope, period, i, resend=resend)
        if m.file is not None:
            filename, data, title = m.file
            queued += outbox.upload_file(ctx, session, key=key, kind=m.kind, channel=m.channel,
                                         filename=filename, data=data, title=title,
                                         initial_comment=m.text or None, study_key=m.study_key)
        else:
            queued += outbox.post(ctx, session, key=key, kind=m.kind, channel=m.channel,
                                  text=m.text, blocks=m.blocks, study_key=m.study_key)
    return queued


Builder = Callable[[bool], list[Outgoing]]


def run_if_due(ctx: AppContext, run: DueRun, build: Builder, result: TickResult) -> str | None:
    """Send `run` once if it is due and nobody sent it yet. Returns what happened, or None.

    `build(late)` makes the messages; it runs before the claim (reads only), so a losing
    worker wastes a little work but never sends.
    """
    now = ctx.clock.now()
    if now < run.due_at:
        return None
    label = f"{run.scope} {run.period}"
    with ctx.db.session() as session:
        if repo.exists(session, run.scope, run.period):
            return None
    delay = now - run.due_at
    if delay > SKIP_AFTER:
        with ctx.db.session() as session:
            if not repo.claim(session, scope=run.scope, period=run.period, status=repo.SKIPPED,
                              late=True, now=now):
                return None
        log.warning("digest %s skipped: due %s, now %s — more than %d h late",
                    label, f"{run.due_at:%Y-%m-%d %H:%M}Z", f"{now:%Y-%m-%d %H:%M}Z",
                    SKIP_AFTER.total_seconds() // 3600)
        result.skipped.append(label)
        return repo.SKIPPED
    late = delay > LATE_AFTER
    try:
        messages = build(late)
    except Exception:
        # nothing claimed: the next tick tries again (until it is too late)
        log.exception("digest %s could not be built; trying again next tick", label)
        return None
    status = repo.SENT if messages else repo.EMPTY
    with ctx.db.session() as session:
        if not repo.claim(session, scope=run.scope, period=run.period, status=status, late=late,
                          now=now):
            return None
        enqueue(ctx, session, run.scope, run.period, messages)
    metrics.digest_lateness(delay.total_seconds())
    if not messages:
        result.empty.append(label)
        return repo.EMPTY
    (result.late if late else result.sent).append(label)
    if late:
        log.info("digest %s sent late (due %s)", label, f"{run.due_at:%Y-%m-%d %H:%M}Z")
    return "late" if late else repo.SENT


def run_many(ctx: AppContext, items: list[tuple[DueRun, Builder]], result: TickResult) -> None:
    """run_if_due for each item, after one query that drops the runs already recorded (the
    steady state: every tick between two due times costs one SELECT, not one per scope)."""
    now = ctx.clock.now()
    due = [(r, b) for r, b in items if r.due_at <= now]
    if not due:
        return
    with ctx.db.session() as session:
        done = repo.existing(session, [r.scope for r, _ in due], {r.period for r, _ in due})
    for run, build in due:
        if (run.scope, run.period) not in done:
            run_if_due(ctx, run, build, result)


def study_tick(ctx: AppContext, result: TickResult, studies: list[Study],
               due_run: Callable[[Study, dt.datetime], DueRun],
               build: Callable[[Study, DueRun, str | None], list[Outgoing]]) -> None:
    """One digest kind for every study: each study's latest due run, built (with the late note
    when it goes out late) and sent once by run_many."""
    now = ctx.clock.now()
    items: list[tuple[DueRun, Builder]] = []
    for study in studies:
        run = due_run(study, now)

        def make(late: bool, run: DueRun = run, study: Study = study) -> list[Outgoing]:
            return build(study, run, late_note(run, now, study.timezone) if late else None)

        items.append((run, make))
    run_many(ctx, items, result)


def late_note(run: DueRun, now: dt.datetime, tz: str) -> str:
    due_local = run.due_at.astimezone(ZoneInfo(tz))
    return f"(sent late — it was due {due_local:%H:%M} {due_local.tzname()})"
