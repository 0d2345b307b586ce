"""The weekly stakeholder update (study option `weekly_update`: day, time, channel; default
Monday 09:00 in the study channel): the funnel for the study and per site with the
conversion at each step, median days first call → referral and referral → visit, callbacks
on time — as text, then the funnel chart as a PNG. Counts only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.blocks import Block, context, divider, header, section
from bot.context import AppContext
from bot.digests.chart import conversion, funnel_png
from bot.digests.render import fit_blocks, list_section, stale_section
from bot.digests.runs import (
    DueRun,
    Outgoing,
    TickResult,
    last_weekly,
    local_due,
    study_tick,
)
from bot.kpis import FUNNEL_STEPS, range_period, study_kpis
from bot.leads.sla import stale_summary
from storage.models import Study
from storage.vocabulary import WEEKDAYS

KIND = "weekly_update"
CHART_KIND = "weekly_chart"
DEFAULT_DAY, DEFAULT_TIME = "mon", "09:00"


@dataclass(frozen=True)
class WeeklyConfig:
    day: str
    time: str
    channel: str


def config(study: Study) -> WeeklyConfig:
    opts = (study.options or {}).get("weekly_update") or {}
    day = str(opts.get("day", DEFAULT_DAY)).lower()[:3]
    time = str(opts.get("time", DEFAULT_TIME))
    try:
        dt.time.fromisoformat(time)
    except ValueError:
        time = DEFAULT_TIME  # the importer refuses these; never let one study stop the job
    return WeeklyConfig(day=day if day in WEEKDAYS else DEFAULT_DAY, time=time,
                        channel=str(opts.get("channel") or study.channel_id))


def scope_for(study_key: str) -> str:
    return f"weekly:{study_key}"


def week_of(due_day: dt.date) -> tuple[dt.date, dt.date]:
    """The 7 local days reported on: the week that ended the day before the update."""
    return due_day - dt.timedelta(days=7), due_day - dt.timedelta(days=1)


def period_key(start: dt.date, end: dt.date) -> str:
    return f"{start.isoformat()}/{end.isoformat()}"


def due_run(study: Study, now: dt.datetime) -> DueRun:
    cfg = config(study)
    day, due = last_weekly(now, cfg.day, cfg.time, study.timezone)
    return DueRun(scope_for(study.key), period_key(*week_of(day)), due, day)


def due_at(study: Study, end: dt.date) -> dt.datetime:
    """When the update for the week ending `end` is due: the configured time the day after."""
    return local_due(end + dt.timedelta(days=1), config(study).time, study.timezone)


def week_period(start: dt.date, end: dt.date, tz: str) -> Any:
    """A bot.kpis Period covering start..end (inclusive) local days."""
    return range_period(start, end, tz, f"{start:%d %b} – {end:%d %b %Y}")


def step_label(step: str) -> str:
    return dict(FUNNEL_STEPS).get(step, step.replace("_", " "))


def funnel_lines(funnel: list[tuple[str, int]], *, compact: bool = False) -> list[str]:
    """One line per step with its conversion from the step before (none after a zero)."""
    lines = []
    prev: int | None = None
    for step, n in funnel:
        pct = ""
        if prev:
            pct = f" ({conversion(n, prev)})" if compact else f" ({conversion(n, prev)} of previous step)"
        lines.append(f"{step_label(step)} {n}{pct}" if compact else f"{step_label(step)}: *{n}*{pct}")
        prev = n
    return lines


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} days"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{round(value)}%"


def render(study: Study, start: dt.date, end: dt.date, total: Any, per_site: dict[str, Any], *,
           late: str | None = None, stale: dict[str, Any] | None = None
           ) -> tuple[str, list[Block]]:
    hint = f"`/prescreen stats {study.key} 7d`"
    blocks: list[Block] = [header(f"{study.key} weekly update — {start:%d %b} to {end:%d %b %Y}")]
    if late:
        blocks.append(context(late))
    blocks.append(list_section("*Funnel (whole study):*", funnel_lines(list(total.funnel)),
                               more_hint=hint))
    blocks.append(section(
        f"*Median days* first call → referral: {_days(total.median_days_call_to_referral)} · "
        f"referral → visit: {_days(total.median_days_referral_to_visit)}\n"
        f"*Callbacks on time:* {_pct(total.callbacks_on_time_pct)} "
        f"({total.callbacks_due} due, {total.callbacks_missed} missed)"))
    if stale is not None:
        blocks.append(stale_section(stale))
    if per_site:
        blocks.append(divider())
    for site_key, k in sorted(per_site.items()):
        # per site only the referral steps are the site's own (calls are study-wide)
        steps = [(s, n) for s, n in k.funnel if s not in ("calls", "reached", "pre_qualified")]
        blocks.append(list_section(f"*{site_key}:*", funnel_lines(steps, compact=True),
                                   sep=" → ", more_hint=hint))
    blocks.append(context("Counts only, no patient identity. Funnel chart below."))
    calls = dict(total.funnel).get("calls", total.calls)
    text = (f"{study.key} weekly update {start:%d %b}–{end:%d %b}: {calls} calls, "
            f"{total.prequalified} pre-qualified")
    if late:
        text += " " + late
    return text, fit_blocks(blocks, more_hint=hint)


def build(ctx: AppContext, study: Study, start: dt.date, end: dt.date, *,
          late: str | None = None) -> list[Outgoing]:
    period = week_period(start, end, study.timezone)
    total = study_kpis(ctx, study.key, period)
    per_site = {site.key: study_kpis(ctx, study.key, period, site_key=site.key)
                for site in study.sites if site.active}
    # as of the due time (see daily.gather): previews, late sends and resends agree
    stale = stale_summary(ctx, study.key, due_at(study, end))
    text, blocks = render(study, start, end, total, per_site, late=late, stale=stale)
    cfg = config(study)
    png = funnel_png(f"{study.key} funnel, {start:%d %b} – {end:%d %b %Y}",
                     [(step_label(step), n) for step, n in total.funnel])
    filename = f"{study.key.lower()}-funnel-{start.isoformat()}.png"
    return [Outgoing(KIND, cfg.channel, text, blocks, study_key=study.key),
            Outgoing(CHART_KIND, cfg.channel, f"{study.key} funnel chart", study_key=study.key,
                     file=(filename, png, f"{study.key} funnel {start:%d %b} – {end:%d %b}"))]


def tick(ctx: AppContext, result: TickResult, studies: list[Study]) -> None:
    def make(study: Study, run: DueRun, note: str | None) -> list[Outgoing]:
        start, end = week_of(run.day)
        return build(ctx, study, start, end, late=note)

    study_tick(ctx, result, studies, due_run, make)
