"""The daily digest in each study channel at the study's digest_time (study time zone):
yesterday's numbers against the previous 7-day average, what is waiting, per coordinator
and per site. Counts, reference codes and Slack mentions only — never patient identity.

Numbers come from bot.kpis (study_kpis); this module only decides what to say and when.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.blocks import Block, context, divider, fields, header
from bot.context import AppContext
from bot.digests.render import arrow, fit_blocks, list_section, stale_section
from bot.digests.runs import (
    DueRun,
    Outgoing,
    TickResult,
    last_daily,
    local_due,
    study_tick,
)
from bot.kpis import day_period, study_kpis
from bot.leads.sla import stale_summary
from storage.models import Study
from storage.repositories import studies as study_repo

KIND = "daily_digest"
REFERRAL_STEPS = (("approved", "approved"), ("sent_to_site", "sent to site"),
                  ("visit_scheduled", "visits scheduled"), ("enrolled", "enrolled"))


def scope_for(study_key: str) -> str:
    return f"daily:{study_key}"


def more_hint(study_key: str) -> str:
    return f"`/prescreen stats {study_key} yesterday`"


def due_run(study: Study, now: dt.datetime) -> DueRun:
    """The latest digest_time that has passed; it reports on the local day before it."""
    day, due = last_daily(now, study.digest_time or "08:30", study.timezone)
    return DueRun(scope_for(study.key), (day - dt.timedelta(days=1)).isoformat(), due, day)


def next_period(study: Study, now: dt.datetime) -> dt.date:
    """The day the next digest to be sent will report on (for `digest preview`)."""
    day, _ = last_daily(now, study.digest_time or "08:30", study.timezone)
    return day  # the run after the latest one reports on the latest run's own day


def due_at(study: Study, day: dt.date) -> dt.datetime:
    """When the digest reporting on `day` is due: digest_time on the next local day (UTC)."""
    return local_due(day + dt.timedelta(days=1), study.digest_time or "08:30", study.timezone)


@dataclass
class DailyNumbers:
    day: Any  # StudyKpis for the reported day
    previous: list[Any]  # StudyKpis for each of the 7 days before it
    today: Any  # StudyKpis for the day the digest is sent (callbacks due today)
    stale: dict[str, Any] | None = None  # bot.leads.sla.stale_summary at the due time


def gather(ctx: AppContext, study: Study, day: dt.date) -> DailyNumbers:
    tz = study.timezone
    return DailyNumbers(
        day=study_kpis(ctx, study.key, day_period(day, tz)),
        previous=[study_kpis(ctx, study.key, day_period(day - dt.timedelta(days=i), tz))
                  for i in range(1, 8)],
        today=study_kpis(ctx, study.key, day_period(day + dt.timedelta(days=1), tz)),
        # Items past SLA as of the run's due time, not the moment it is built: a preview
        # (due later), the on-time send, a late send and a resend of the same period show the
        # same count for the same data, and a late send does not count items that only went
        # past SLA after the digest was due.
        stale=stale_summary(ctx, study.key, due_at(study, day)),
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _avg(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _trend(name: str, value: int, previous: list[int]) -> tuple[str, str]:
    avg = _avg([float(v) for v in previous])
    return name, f"{value} {arrow(value, avg)} _(7-day avg {avg:.1f})_"


def render(study_key: str, day: dt.date, numbers: DailyNumbers, *,
           late: str | None = None) -> tuple[str, list[Block]]:
    k, prev = numbers.day, numbers.previous
    hint = more_hint(study_key)
    blocks: list[Block] = [header(f"{study_key} daily digest — {day:%a %d %b %Y}")]
    if late:
        blocks.append(context(late))
    blocks.append(fields([
        _trend("Calls", k.calls, [p.calls for p in prev]),
        _trend("Reached", k.reached, [p.reached for p in prev]),
        _trend("Pre-qualified", k.prequalified, [p.prequalified for p in prev]),
        _trend("Disqualified", k.disqualified, [p.disqualified for p in prev]),
    ]))
    if k.top_failed:
        failed = [f"{crit} {n}" for crit, n in k.top_failed]
        blocks.append(list_section("*Top failed criteria:*", failed, sep=", ", more_hint=hint,
                                   max_items=5))
    blocks.append(fields([
        _trend(label.capitalize(), int(k.referrals.get(state, 0)),
               [int(p.referrals.get(state, 0)) for p in prev])
        for state, label in REFERRAL_STEPS
    ]))
    blocks.append(fields([
        ("Callbacks due today", str(numbers.today.callbacks_due)),
        ("Callbacks missed", _trend("", k.callbacks_missed, [p.callbacks_missed for p in prev])[1]),
    ]))
    blocks.append(list_section(f"*Pending approval > 24 h ({len(k.pending_approvals_24h)}):*",
                               list(k.pending_approvals_24h), sep=", ", more_hint=hint,
                               max_items=40))
    blocks.append(list_section(f"*Unreachable ({len(k.unreachable)}):*", list(k.unreachable),
                               sep=", ", more_hint=hint, max_items=40))
    if numbers.stale is not None:
        blocks.append(stale_section(numbers.stale))
    coord_lines = [
        f"<@{sid}>: {_n(c.get('calls', 0), 'call')} · {c.get('reached', 0)} reached · "
        f"{c.get('prequalified', 0)} pre-qualified"
        for sid, c in sorted(k.by_coordinator.items(), key=lambda kv: (-kv[1].get("calls", 0), kv[0]))
    ]
    site_lines = [
        f"*{site}*: " + " · ".join(f"{n} {state.replace('_', ' ')}"
                                   for state, n in sorted(states.items()) if n)
        for site, states in sorted(k.by_site.items()) if any(states.values())
    ]
    blocks.append(divider())
    blocks.append(list_section("*Per coordinator:*", coord_lines, more_hint=hint, max_items=20,
                               empty="no calls"))
    blocks.append(list_section("*Per site:*", site_lines, more_hint=hint, max_items=20,
                               empty="no referral changes"))
    blocks.append(context(f"Counts and reference codes only. More: {hint}"))
    text = (f"{study_key} daily digest {day:%a %d %b}: {k.calls} calls, {k.reached} reached, "
            f"{k.prequalified} pre-qualified, {k.disqualified} disqualified")
    if late:
        text += " " + late
    return text, fit_blocks(blocks, more_hint=hint)


def build(ctx: AppContext, study: Study, day: dt.date, *, late: str | None = None
          ) -> list[Outgoing]:
    numbers = gather(ctx, study, day)
    text, blocks = render(study.key, day, numbers, late=late)
    return [Outgoing(KIND, study.channel_id, text, blocks, study_key=study.key)]


def active_studies(ctx: AppContext) -> list[Study]:
    with ctx.db.session() as session:
        rows = study_repo.list_studies(session, active_only=True)
        session.expunge_all()
    return rows


def tick(ctx: AppContext, result: TickResult, studies: list[Study]) -> None:
    study_tick(ctx, result, studies, due_run, lambda study, run, note: build(
        ctx, study, dt.date.fromisoformat(run.period), late=note))
