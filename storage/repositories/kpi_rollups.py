"""KPI rollups: the additive figures of storage/repositories/kpis.py per study and study-local
day, so a period of any length is a sum over at most 366 small day rows.

How they stay exact (README "KPIs", rollups):
- Every change that can move a figure writes a *mark* (study, instant) in the same transaction:
  ORM changes through the `before_flush` hook installed by storage.db.Database (new, changed
  or deleted calls, candidates, referrals, referral events, callbacks, old and new values), the
  few bulk statements by calling `mark_*` here. Marks are insert-only rows.
- The `kpis` job turns marks into study-local days, recomputes each of those days from the raw
  rows with the very queries of storage/repositories/kpis.py (one day = one half-open UTC
  window) and deletes exactly the marks it read. A mark committed meanwhile stays for the next
  run; a crash loses nothing (the marks are still there).
- Today and yesterday (study-local) are also kept per 15-minute UTC slot (kpi_slot_counts): the
  job recomputes only the slots that carry a mark and sums the day from its slots.
- The read path sums clean days from the rollups; for a day that still carries a mark it sums
  the day's clean slots and recomputes only the marked slots from the raw rows (a marked day
  that is not kept per slot, i.e. data arriving late for an older day, is recomputed whole), so a
  figure is exact even between two job runs, and today costs a few minutes of raw rows.
- `kpi_state` keeps the study time zone and callback grace the rollups were built with; any
  difference (or no state yet) means the figures come from the raw rows until a rebuild.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Date, delete, func, insert, literal, or_, select, text
from sqlalchemy.orm import Session

from storage.db import begin_writing
from storage.models import (
    KpiCount,
    KpiMark,
    KpiMonthCount,
    KpiSlotCount,
    KpiSlotDay,
    KpiState,
    KpiValue,
    Study,
)
from storage.repositories import kpis as raw

NONE = ""  # how a missing key (no source, no site) is stored in kpi_counts
MEDIANS = ("c2r", "r2v")  # days first call → referral, referral → visit
CALLBACK_KEYS = ("due", "missed", "settled", "on_time")
Row = tuple[str, str, str, str, int]  # figure, k1, k2, k3, n


@dataclass
class Figures:
    """Everything the KPIs are assembled from, raw or from rollups (same shapes either way)."""

    calls: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)
    transitions: list[tuple[int | None, str, int]] = field(default_factory=list)
    referrals_by_source: dict[str | None, int] = field(default_factory=dict)
    leads_by_source: dict[str | None, int] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CALLBACK_KEYS, 0))
    median_c2r: float | None = None
    median_r2v: float | None = None

    def top_failed(self, limit: int = 5) -> list[tuple[str, int]]:
        return sorted(self.failed.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def median_bin(days: float) -> int:
    """Coarse, order-keeping bins: whole days within 60 days, ten-day bins beyond."""
    return math.floor(days) if -60 <= days < 60 else 10 * math.floor(days / 10)


# ---- the raw definitions -------------------------------------------------------------------

def raw_figures(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                *, grace_minutes: int) -> Figures:
    """Every figure straight from the raw rows of [start, end) (the definitions)."""
    return Figures(
        calls=raw.call_breakdown(session, study_id, start, end),
        failed=dict(raw.top_failed_criteria(session, study_id, start, end, limit=10**6)),
        transitions=raw.referral_transitions(session, study_id, start, end),
        referrals_by_source=raw.referrals_by_source(session, study_id, start, end),
        leads_by_source=raw.leads_by_source(session, study_id, start, end),
        callbacks=raw.callback_counts(session, study_id, start, end, grace_minutes=grace_minutes),
        median_c2r=raw.median_days_call_to_referral(session, study_id, start, end),
        median_r2v=raw.median_days_referral_to_visit(session, study_id, start, end),
    )


def _day_rows(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
              grace_minutes: int) -> tuple[list[Row], list[tuple[str, int, float]]]:
    """One day's rollup rows and median values, from the raw rows of its UTC window."""
    rows: list[Row] = []
    for outcome, user, src, n in raw.call_breakdown(session, study_id, start, end):
        rows.append(("call", outcome, user, src or NONE, n))
    for qid, n in raw.top_failed_criteria(session, study_id, start, end, limit=10**6):
        rows.append(("failed", qid, NONE, NONE, n))
    for site, state, n in raw.referral_transitions(session, study_id, start, end):
        rows.append(("transition", NONE if site is None else str(site), state, NONE, n))
    for src, n in raw.referrals_by_source(session, study_id, start, end).items():
        rows.append(("ref_source", src or NONE, NONE, NONE, n))
    for src, n in raw.leads_by_source(session, study_id, start, end).items():
        rows.append(("lead", src or NONE, NONE, NONE, n))
    cb = raw.callback_counts(session, study_id, start, end, grace_minutes=grace_minutes)
    rows += [("callbacks", k, NONE, NONE, cb[k]) for k in CALLBACK_KEYS if cb[k]]
    values: list[tuple[str, int, float]] = []
    for fig, vals in (("c2r", raw.call_to_referral_days(session, study_id, start, end)),
                      ("r2v", raw.referral_to_visit_days(session, study_id, start, end))):
        hist: dict[int, int] = {}
        for v in vals:
            b = median_bin(v)
            hist[b] = hist.get(b, 0) + 1
            values.append((fig, b, v))
        rows += [("hist_" + fig, str(b), NONE, NONE, n) for b, n in hist.items()]
    return rows, values


SLOT = dt.timedelta(minutes=15)  # every time zone in use today is a whole number of slots from UTC
SLOT_DAYS = 2  # today and yesterday are kept per slot


def slot_of(at: dt.datetime) -> dt.datetime:
    """The 15-minute UTC slot an instant falls in."""
    at = at.astimezone(dt.UTC)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def _slots(day: dt.date, tz: str) -> list[dt.datetime] | None:
    """The slots of a study-local day (92 to 100 of them), or None when its midnight is not on
    a slot boundary (some historical offsets): such a day is only ever kept whole."""
    start, end = _window(day, tz)
    if start != slot_of(start) or end != slot_of(end):
        return None
    return [start + i * SLOT for i in range(int((end - start) / SLOT))]


def _window(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    z = ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(0), z).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), z).astimezone(dt.UTC)
    return start, end


def local_day(at: dt.datetime, tz: str) -> dt.date:
    return at.astimezone(ZoneInfo(tz)).date()


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _month_len(month: dt.date) -> int:
    nxt = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (nxt - month).days


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of the calendar months lying wholly inside first..last."""
    out = []
    m = first.replace(day=1) if first.day == 1 else (first.replace(day=28)
                                                      + dt.timedelta(days=4)).replace(day=1)
    while m + dt.timedelta(days=_month_len(m) - 1) <= last:
        out.append(m)
        m = m + dt.timedelta(days=_month_len(m))
    return out


def _runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as runs of consecutive days (first, last)."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in days:
        if out and out[-1][1] + dt.timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


# ---- reading a period from the rollups -----------------------------------------------------

def rollup_figures(session: Session, study_id: int, tz: str, first_day: dt.date,
                   last_day: dt.date, *, grace_minutes: int) -> Figures | None:
    """The figures of local days first_day..last_day from the rollups, with the days that still
    carry a mark recomputed from the raw rows; None when the study's rollups are not built for
    this time zone and grace (the caller reads the raw rows)."""
    state = session.get(KpiState, study_id)
    if state is None or state.timezone != tz or state.grace_minutes != grace_minutes:
        return None
    start, _ = _window(first_day, tz)
    _, end = _window(last_day, tz)
    marked = session.scalars(select(KpiMark.at).distinct().where(
        KpiMark.study_id == study_id, KpiMark.at >= start, KpiMark.at < end)).all()
    dirty = sorted({local_day(at, tz) for at in marked})

    # whole months without a pending change come from the month sums, the rest from days
    dirty_months = {d.replace(day=1) for d in dirty}
    months = [m for m in _months(first_day, last_day) if m not in dirty_months]
    month_days = {m + dt.timedelta(days=i) for m in months for i in range(_month_len(m))}
    sums: dict[tuple[str, str, str, str], int] = {}
    if months:
        for fig, k1, k2, k3, n in session.execute(
                select(KpiMonthCount.figure, KpiMonthCount.k1, KpiMonthCount.k2, KpiMonthCount.k3,
                       func.sum(KpiMonthCount.n))
                .where(KpiMonthCount.study_id == study_id, KpiMonthCount.month.in_(months))
                .group_by(KpiMonthCount.figure, KpiMonthCount.k1, KpiMonthCount.k2,
                          KpiMonthCount.k3)):
            sums[(fig, k1, k2, k3)] = int(n)
    skip = month_days | set(dirty)
    day_ranges = _runs([d for d in _days(first_day, last_day) if d not in skip])
    for lo, hi in day_ranges:
        for fig, k1, k2, k3, n in session.execute(
                select(KpiCount.figure, KpiCount.k1, KpiCount.k2, KpiCount.k3, func.sum(KpiCount.n))
                .where(KpiCount.study_id == study_id, KpiCount.day >= lo, KpiCount.day <= hi)
                .group_by(KpiCount.figure, KpiCount.k1, KpiCount.k2, KpiCount.k3)):
            sums[(fig, k1, k2, k3)] = sums.get((fig, k1, k2, k3), 0) + int(n)
    dirty_values: list[tuple[str, int, float]] = []
    per_slot = set(session.scalars(select(KpiSlotDay.day).where(
        KpiSlotDay.study_id == study_id, KpiSlotDay.day.in_(dirty)))) if dirty else set()
    bad_slots = sorted({slot_of(at) for at in marked if local_day(at, tz) in per_slot})
    whole = [d for d in dirty if d not in per_slot]  # recomputed whole from the raw rows
    if per_slot:  # the clean slots of the marked days kept per slot
        for fig, k1, k2, k3, n in session.execute(
                select(KpiSlotCount.figure, KpiSlotCount.k1, KpiSlotCount.k2, KpiSlotCount.k3,
                       func.sum(KpiSlotCount.n))
                .where(KpiSlotCount.study_id == study_id, KpiSlotCount.day.in_(sorted(per_slot)),
                       KpiSlotCount.slot.not_in(bad_slots))
                .group_by(KpiSlotCount.figure, KpiSlotCount.k1, KpiSlotCount.k2,
                          KpiSlotCount.k3)):
            sums[(fig, k1, k2, k3)] = sums.get((fig, k1, k2, k3), 0) + int(n)
    windows = [_window(day, tz) for day in whole] + [(s, s + SLOT) for s in bad_slots]
    for w_start, w_end in windows:
        rows, values = _day_rows(session, study_id, w_start, w_end, grace_minutes)
        for fig, k1, k2, k3, n in rows:
            sums[(fig, k1, k2, k3)] = sums.get((fig, k1, k2, k3), 0) + n
        dirty_values += values

    f = Figures()
    for (fig, k1, k2, k3), n in sorted(sums.items()):
        if not n:
            continue
        if fig == "call":
            f.calls.append((k1, k2, k3 or None, n))
        elif fig == "failed":
            f.failed[k1] = n
        elif fig == "transition":
            f.transitions.append((int(k1) if k1 else None, k2, n))
        elif fig == "ref_source":
            f.referrals_by_source[k1 or None] = n
        elif fig == "lead":
            f.leads_by_source[k1 or None] = n
        elif fig == "callbacks":
            f.callbacks[k1] = n

    def median(fig: str) -> float | None:
        hist = sorted((int(k1), n) for (g, k1, _k2, _k3), n in sums.items()
                      if g == "hist_" + fig and n)
        total = sum(n for _b, n in hist)
        if not total:
            return None
        picks = []
        for pos in sorted({(total + 1) // 2, (total + 2) // 2}):  # 1-based middle position(s)
            seen = 0
            for b, n in hist:
                if seen + n >= pos:
                    # the value of rank r (0-based) in this bin, among the stored values S and
                    # the ones just recomputed D: every S below rank r - |D| comes before it, so
                    # it is the (r - o)-th of S[o..r] together with D (o = max(0, r - |D|))
                    r = pos - seen - 1
                    fresh = sorted(v for g, vb, v in dirty_values if g == fig and vb == b)
                    o = max(0, r - len(fresh))
                    stored = list(session.scalars(select(KpiValue.value).where(
                        KpiValue.study_id == study_id, KpiValue.figure == fig, KpiValue.bin == b,
                        KpiValue.day >= first_day, KpiValue.day <= last_day,
                        *([KpiValue.day.not_in(whole)] if whole else []),
                        *([or_(KpiValue.slot.is_(None), KpiValue.slot.not_in(bad_slots))]
                          if bad_slots else []))
                        .order_by(KpiValue.value).offset(o).limit(r - o + 1)))
                    picks.append(sorted(stored + fresh)[r - o])
                    break
                seen += n
        return float(sum(picks) / len(picks))

    f.median_c2r, f.median_r2v = median("c2r"), median("r2v")
    return f


# ---- keeping them: recompute days, consume marks, rebuild ----------------------------------

def lock_study(session: Session, study_id: int) -> bool:
    """One rollup writer per study at a time: an advisory lock until commit on PostgreSQL
    (False when another worker holds it), the write lock on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(20, :sid)"),
                                   {"sid": study_id}))
    begin_writing(session)
    return True


def recompute_marked(session: Session, study_id: int, tz: str, marks: Sequence[dt.datetime],
                     grace_minutes: int, now: dt.datetime) -> list[dt.date]:
    """Bring the days of these marked instants up to date and return them. Today and yesterday
    are kept per slot: a day becoming one is computed slot by slot once, then only its marked
    slots are recomputed and the day is summed from its slots. Older days are recomputed whole
    (and stop being kept per slot)."""
    today = local_day(now, tz)
    recent = {today - dt.timedelta(days=i) for i in range(SLOT_DAYS)}
    by_day: dict[dt.date, set[dt.datetime]] = {}
    for at in marks:
        by_day.setdefault(local_day(at, tz), set()).add(slot_of(at))
    per_slot = set(session.scalars(select(KpiSlotDay.day).where(KpiSlotDay.study_id == study_id)))
    whole: list[dt.date] = []
    for day, slots in sorted(by_day.items()):
        all_slots = _slots(day, tz) if day in recent else None
        if all_slots is None:
            whole.append(day)
            continue
        if day not in per_slot:
            _clear_day(session, study_id, day)
            slots = _active_slots(session, study_id, day, tz)
            session.execute(insert(KpiSlotDay), [{"study_id": study_id, "day": day}])
        for slot in sorted(slots):
            _recompute_slot(session, study_id, day, slot, grace_minutes)
        session.execute(delete(KpiCount).where(KpiCount.study_id == study_id, KpiCount.day == day))
        session.execute(insert(KpiCount).from_select(
            ["study_id", "day", "figure", "k1", "k2", "k3", "n"],
            select(KpiSlotCount.study_id, KpiSlotCount.day, KpiSlotCount.figure, KpiSlotCount.k1,
                   KpiSlotCount.k2, KpiSlotCount.k3, func.sum(KpiSlotCount.n))
            .where(KpiSlotCount.study_id == study_id, KpiSlotCount.day == day)
            .group_by(KpiSlotCount.study_id, KpiSlotCount.day, KpiSlotCount.figure,
                      KpiSlotCount.k1, KpiSlotCount.k2, KpiSlotCount.k3)))
    stale = [d for d in per_slot if d not in recent]
    if stale:  # days that left the slot window keep their day rows; their slots go
        session.execute(delete(KpiSlotCount).where(KpiSlotCount.study_id == study_id,
                                                   KpiSlotCount.day.in_(stale)))
        session.execute(delete(KpiSlotDay).where(KpiSlotDay.study_id == study_id,
                                                 KpiSlotDay.day.in_(stale)))
    recompute_days(session, study_id, tz, whole, grace_minutes, months_of=sorted(by_day))
    return sorted(by_day)


def _clear_day(session: Session, study_id: int, day: dt.date) -> None:
    session.execute(delete(KpiSlotCount).where(KpiSlotCount.study_id == study_id,
                                               KpiSlotCount.day == day))
    session.execute(delete(KpiValue).where(KpiValue.study_id == study_id, KpiValue.day == day))


def _active_slots(session: Session, study_id: int, day: dt.date, tz: str) -> set[dt.datetime]:
    """The slots of a day where any figure has a row (the others are empty)."""
    start, end = _window(day, tz)
    return {slot_of(at) for at in raw.instants_in(session, study_id, start, end)}


def _recompute_slot(session: Session, study_id: int, day: dt.date, slot: dt.datetime,
                    grace_minutes: int) -> None:
    rows, values = _day_rows(session, study_id, slot, slot + SLOT, grace_minutes)
    session.execute(delete(KpiSlotCount).where(KpiSlotCount.study_id == study_id,
                                               KpiSlotCount.slot == slot))
    session.execute(delete(KpiValue).where(KpiValue.study_id == study_id, KpiValue.slot == slot))
    if rows:
        session.execute(insert(KpiSlotCount), [
            {"study_id": study_id, "slot": slot, "day": day, "figure": f, "k1": k1, "k2": k2,
             "k3": k3, "n": n} for f, k1, k2, k3, n in rows])
    if values:
        session.execute(insert(KpiValue), [
            {"study_id": study_id, "day": day, "slot": slot, "figure": f, "bin": b, "value": v}
            for f, b, v in values])


def recompute_days(session: Session, study_id: int, tz: str, days: Sequence[dt.date],
                   grace_minutes: int, *, months_of: Sequence[dt.date] = ()) -> None:
    """Recompute these days whole from the raw rows, then the month sums they (and
    `months_of`) belong to."""
    for day in days:
        recompute_day(session, study_id, tz, day, grace_minutes)
    for month in sorted({d.replace(day=1) for d in [*days, *months_of]}):
        nxt = month + dt.timedelta(days=_month_len(month))
        session.execute(delete(KpiMonthCount).where(KpiMonthCount.study_id == study_id,
                                                    KpiMonthCount.month == month))
        session.execute(insert(KpiMonthCount).from_select(
            ["study_id", "month", "figure", "k1", "k2", "k3", "n"],
            select(KpiCount.study_id, literal(month, Date), KpiCount.figure, KpiCount.k1,
                   KpiCount.k2, KpiCount.k3, func.sum(KpiCount.n))
            .where(KpiCount.study_id == study_id, KpiCount.day >= month, KpiCount.day < nxt)
            .group_by(KpiCount.study_id, KpiCount.figure, KpiCount.k1, KpiCount.k2, KpiCount.k3)))


def recompute_day(session: Session, study_id: int, tz: str, day: dt.date, grace_minutes: int,
                  ) -> None:
    """One day from the raw rows (the caller refreshes its month: recompute_days)."""
    start, end = _window(day, tz)
    rows, values = _day_rows(session, study_id, start, end, grace_minutes)
    session.execute(delete(KpiCount).where(KpiCount.study_id == study_id, KpiCount.day == day))
    session.execute(delete(KpiValue).where(KpiValue.study_id == study_id, KpiValue.day == day))
    session.execute(delete(KpiSlotCount).where(KpiSlotCount.study_id == study_id,
                                               KpiSlotCount.day == day))
    session.execute(delete(KpiSlotDay).where(KpiSlotDay.study_id == study_id,
                                             KpiSlotDay.day == day))
    if rows:
        session.execute(insert(KpiCount), [
            {"study_id": study_id, "day": day, "figure": f, "k1": k1, "k2": k2, "k3": k3, "n": n}
            for f, k1, k2, k3, n in rows])
    if values:
        session.execute(insert(KpiValue), [
            {"study_id": study_id, "day": day, "figure": f, "bin": b, "value": v}
            for f, b, v in values])


def studies(session: Session) -> list[tuple[int, str, str]]:
    """(id, key, time zone) of every study."""
    return [(i, k, tz) for i, k, tz in session.execute(
        select(Study.id, Study.key, Study.timezone).order_by(Study.key))]


def built_with(session: Session, study_id: int) -> tuple[str, int] | None:
    state = session.get(KpiState, study_id)
    return None if state is None else (state.timezone, state.grace_minutes)


def take_marks(session: Session, study_id: int, *, limit: int) -> list[tuple[int, dt.datetime]]:
    return [(i, at) for i, at in session.execute(
        select(KpiMark.id, KpiMark.at).where(KpiMark.study_id == study_id)
        .order_by(KpiMark.id).limit(limit))]


def delete_marks(session: Session, ids: Sequence[int]) -> None:
    """Exactly these marks: one committed meanwhile (even with a smaller id) stays."""
    for i in range(0, len(ids), 1000):
        session.execute(delete(KpiMark).where(KpiMark.id.in_(ids[i:i + 1000])))


def raw_span(session: Session, study_id: int) -> tuple[dt.datetime, dt.datetime] | None:
    """The first and last instant any figure of the study depends on."""
    lows, highs = [], []
    for col, rows in raw.counted_instants(study_id):
        lo, hi = session.execute(rows.add_columns(func.min(col), func.max(col))).one()
        if lo is not None:
            lows.append(lo)
            highs.append(hi)
    if not lows:
        return None
    return min(lows), max(highs)


def clear(session: Session, study_id: int) -> None:
    for model in (KpiCount, KpiMonthCount, KpiValue, KpiSlotCount, KpiSlotDay, KpiState):
        session.execute(delete(model).where(model.study_id == study_id))  # type: ignore[attr-defined]


def max_mark_id(session: Session, study_id: int) -> int:
    return int(session.scalar(select(func.max(KpiMark.id)).where(KpiMark.study_id == study_id))
               or 0)


def mark_ids_upto(session: Session, study_id: int, max_id: int) -> list[int]:
    return list(session.scalars(select(KpiMark.id).where(KpiMark.study_id == study_id,
                                                         KpiMark.id <= max_id)))


def set_state(session: Session, study_id: int, tz: str, grace_minutes: int,
              now: dt.datetime) -> None:
    session.merge(KpiState(study_id=study_id, timezone=tz, grace_minutes=grace_minutes,
                           built_at=now))
