"""The "your day" DM: at 08:00 in each coordinator's own zone, today's callbacks in order,
candidates waiting for another attempt, and today's Outlook meetings when Graph is set up.
Reference codes only."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.blocks import Block, context, header
from bot.calendar.views import your_day_blocks
from bot.calendar.workflow import my_calendar
from bot.context import AppContext
from bot.digests.render import fit_blocks, list_section
from bot.digests.runs import Builder, DueRun, Outgoing, TickResult, last_daily, late_note, run_many
from bot.errors import DomainError
from storage.models import Callback
from storage.repositories import candidates as cand_repo
from storage.repositories import members as member_repo

YOUR_DAY_TIME = "08:00"
KIND = "your_day"
MORE = "`/prescreen callbacks` and App Home"


def scope_for(slack_id: str) -> str:
    return f"yourday:{slack_id}"


def coordinators(ctx: AppContext) -> list[tuple[str, str]]:
    """(slack id, timezone) of active members who coordinate an active study."""
    with ctx.db.session() as session:
        return member_repo.coordinator_timezones(session)


def due_run(slack_id: str, tz: str, now: dt.datetime) -> DueRun:
    day, due = last_daily(now, YOUR_DAY_TIME, tz)
    return DueRun(scope_for(slack_id), day.isoformat(), due, day)


def build(ctx: AppContext, slack_id: str, day: dt.date, *, now: dt.datetime,
          late: str | None = None) -> list[Outgoing]:
    """The DM for `day` (local to the member), or [] when there is nothing to tell."""
    with ctx.db.session() as session:
        member = member_repo.find(session, slack_id)
        if member is None:
            return []
        tz = member.timezone
        zone = ZoneInfo(tz)
        start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0),
                                  tzinfo=zone).astimezone(dt.UTC)
        study_ids = [m.study_id for m in member.memberships if m.role == "coordinator"]
        callbacks: list[Callback] = cand_repo.callbacks_between(session, member.id, start, end,
                                                                 limit=500)
        cb_lines = []
        booked = set()
        for cb in callbacks:
            booked.add(cb.candidate_id)
            cand = cb.candidate
            own = cb.due_at.astimezone(zone)
            theirs = cb.due_at.astimezone(ZoneInfo(cand.timezone))
            when = f"{own:%H:%M}"
            if theirs.utcoffset() != own.utcoffset():
                when += f" ({theirs:%H:%M} {theirs.tzname()} for them)"
            cb_lines.append(f"{when} · {cand.ref_code} · attempt {cand.attempts + 1}")
        waiting = [c for c in cand_repo.needing_attempt(session, member.id, study_ids, limit=500)
                   if c.id not in booked]
        attempt_lines = [f"{c.ref_code} · {c.attempts} attempt{'s' if c.attempts != 1 else ''}"
                         f" · last {(c.last_outcome or 'none').replace('_', ' ')}"
                         for c in waiting]
    meetings: list[Block] = []
    try:
        meetings = your_day_blocks(my_calendar(ctx, slack_id, max(now, start)))
    except DomainError:
        meetings = []
    if not cb_lines and not attempt_lines and not meetings:
        return []
    blocks: list[Block] = [header(f"Your day — {day:%a %d %b}")]
    if late:
        blocks.append(context(late))
    blocks.append(list_section(f"*Callbacks today ({len(cb_lines)}):*", cb_lines, more_hint=MORE,
                               max_items=25))
    blocks.append(list_section(f"*Waiting for another attempt ({len(attempt_lines)}):*",
                               attempt_lines, more_hint=MORE, max_items=25))
    blocks += meetings
    text = (f"Your day: {len(cb_lines)} callback{'s' if len(cb_lines) != 1 else ''}, "
            f"{len(attempt_lines)} waiting for another attempt")
    return [Outgoing(KIND, slack_id, text, fit_blocks(blocks, more_hint=MORE))]


def tick(ctx: AppContext, result: TickResult) -> None:
    now = ctx.clock.now()
    items: list[tuple[DueRun, Builder]] = []
    for slack_id, tz in coordinators(ctx):
        run = due_run(slack_id, tz, now)

        def make(late: bool, run: DueRun = run, slack_id: str = slack_id, tz: str = tz
                 ) -> list[Outgoing]:
            note = late_note(run, now, tz) if late else None
            return build(ctx, slack_id, run.day, now=now, late=note)

        items.append((run, make))
    run_many(ctx, items, result)
