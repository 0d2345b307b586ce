"""Keeping the KPI rollups: the `kpis` job (recompute the days that changed) and
`prescreen-bot kpis rebuild` (recompute a study from its raw rows). How the rollups stay
exact: storage/repositories/kpi_rollups.py and README "KPIs"."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.context import AppContext
from bot.errors import UnknownStudy
from storage.repositories import kpi_rollups as rollups

log = logging.getLogger("prescreen.kpis")

MARKS_PER_RUN = 20_000


@dataclass
class RollupRun:
    days: int = 0
    rebuilt: int = 0
    skipped: int = 0  # studies another worker was updating

    def __str__(self) -> str:
        if not (self.days or self.rebuilt or self.skipped):
            return ""
        parts = [f"{self.days} day(s) recomputed"]
        if self.rebuilt:
            parts.append(f"{self.rebuilt} study(ies) rebuilt")
        if self.skipped:
            parts.append(f"{self.skipped} busy")
        return ", ".join(parts)


def kpis_job(ctx: AppContext) -> str:
    """Recompute the study-local days that changed since the last run (from their marks); a
    study never built, or built with another time zone or callback grace, is rebuilt."""
    grace = ctx.settings.callback_escalate_minutes
    run = RollupRun()
    with ctx.db.session() as s:
        all_studies = rollups.studies(s)
    for sid, _key, tz in all_studies:
        with ctx.db.session() as s:
            if not rollups.lock_study(s, sid):
                run.skipped += 1
                continue
            if rollups.built_with(s, sid) != (tz, grace):
                run.days += _rebuild(ctx, s, sid, tz, grace)
                run.rebuilt += 1
                continue
            marks = rollups.take_marks(s, sid, limit=MARKS_PER_RUN)
            days = rollups.recompute_marked(s, sid, tz, [at for _i, at in marks], grace,
                                            ctx.clock.now())
            rollups.delete_marks(s, [i for i, _at in marks])
            run.days += len(days)
    return str(run)


def rebuild(ctx: AppContext, study_key: str | None = None) -> list[tuple[str, int]]:
    """Recompute every day of one study (or all) from the raw rows: (study, days)."""
    grace = ctx.settings.callback_escalate_minutes
    out = []
    with ctx.db.session() as s:
        targets = [t for t in rollups.studies(s)
                   if study_key is None or t[1].upper() == study_key.upper()]
    if not targets:
        raise UnknownStudy(f"There is no study {study_key}. `prescreen-bot studies list` shows them.")
    for sid, key, tz in targets:
        with ctx.db.session() as s:
            while not rollups.lock_study(s, sid):  # pragma: no cover - a worker is on it
                s.rollback()
            out.append((key, _rebuild(ctx, s, sid, tz, grace)))
    return out


def _rebuild(ctx: AppContext, s: Session, sid: int, tz: str, grace: int) -> int:
    upto = rollups.max_mark_id(s, sid)
    rollups.clear(s, sid)
    span = rollups.raw_span(s, sid)
    days = 0
    if span is not None:
        first, last = rollups.local_day(span[0], tz), rollups.local_day(span[1], tz)
        all_days = [first.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)]
        rollups.recompute_days(s, sid, tz, all_days, grace)
        days = len(all_days)
    rollups.delete_marks(s, rollups.mark_ids_upto(s, sid, upto))
    rollups.set_state(s, sid, tz, grace, ctx.clock.now())
    log.info("kpi rollups of study %s rebuilt: %d days", sid, days)
    return days
