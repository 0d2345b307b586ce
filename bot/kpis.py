"""KPIs: one definition of each figure, used by the digest, /prescreen stats and export.

Periods are study-local calendar days turned into a half-open UTC window, so a DST day counts
its 23 or 25 hours. The SQL lives in storage/repositories/kpis.py; definitions in README "KPIs".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import blocks as bk
from bot.access import Action, require_role, require_somewhere
from bot.context import AppContext
from bot.errors import DomainError, UnknownStudy
from bot.prescreen.outcomes import OUTCOMES
from bot.referrals import states
from storage.repositories import kpi_rollups as rollups
from storage.repositories import kpis as repo
from storage.repositories.studies import get_study, study_keys

REACHED = tuple(code for code, o in OUTCOMES.items() if o.reached)
FUNNEL_STEPS: tuple[tuple[str, str], ...] = (
    ("calls", "Calls"),
    ("reached", "Reached"),
    ("pre_qualified", "Pre-qualified"),
    ("approved", "Approved"),
    ("sent_to_site", "Sent to site"),
    ("visit_scheduled", "Visit scheduled"),
    ("screened", "Screened"),
    ("enrolled", "Enrolled"),
)
PENDING_APPROVAL_AGE = dt.timedelta(hours=24)
MAX_CUSTOM_DAYS = 366
PERIOD_HELP = "Use today, yesterday, 7d, 30d, a date (2026-11-21) or a range (2026-11-01..2026-11-21)."


@dataclass(frozen=True)
class Period:
    start_day: dt.date
    end_day: dt.date  # inclusive
    tz: str
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive
    label: str

    @property
    def days(self) -> int:
        return (self.end_day - self.start_day).days + 1


def _midnight_utc(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), ZoneInfo(tz)).astimezone(dt.UTC)


def _zone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(f"{bk.code(tz)} is not a time zone name (e.g. America/New_York).") from exc
    return tz


def range_period(start_day: dt.date, end_day: dt.date, tz: str, label: str | None = None) -> Period:
    """Local days start_day..end_day (inclusive) as a UTC window."""
    _zone(tz)
    if end_day < start_day:
        raise DomainError(f"The period ends ({end_day}) before it starts ({start_day}). {PERIOD_HELP}")
    if label is None:
        label = str(start_day) if start_day == end_day else f"{start_day} – {end_day}"
    return Period(start_day=start_day, end_day=end_day, tz=tz, start=_midnight_utc(start_day, tz),
                  end=_midnight_utc(end_day + dt.timedelta(days=1), tz), label=label)


def day_period(day: dt.date, tz: str) -> Period:
    """One study-local day (23, 24 or 25 hours long)."""
    return range_period(day, day, tz)


def _parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise DomainError(f"{bk.code(text)} is not a date (use YYYY-MM-DD). {PERIOD_HELP}") from exc


def period_for(spec: str, *, tz: str, today: dt.date) -> Period:
    """Parse a period: today, yesterday, Nd (the N days ending today), a date or a date range."""
    s = (spec or "").strip().lower()
    if s in ("", "today"):
        return range_period(today, today, tz, f"today ({today})")
    if s == "yesterday":
        y = today - dt.timedelta(days=1)
        return range_period(y, y, tz, f"yesterday ({y})")
    m = re.fullmatch(r"(\d{1,3})d", s)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= MAX_CUSTOM_DAYS:
            raise DomainError(f"Pick between 1d and {MAX_CUSTOM_DAYS}d. {PERIOD_HELP}")
        first = today - dt.timedelta(days=n - 1)
        return range_period(first, today, tz, f"last {n} days ({first} – {today})")
    if ".." in s:
        a, _, b = s.partition("..")
        start_day, end_day = _parse_day(a.strip()), _parse_day(b.strip())
        if (end_day - start_day).days + 1 > MAX_CUSTOM_DAYS:
            raise DomainError(f"A period can be at most {MAX_CUSTOM_DAYS} days. {PERIOD_HELP}")
        return range_period(start_day, end_day, tz)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        day = _parse_day(s)
        return range_period(day, day, tz)
    raise DomainError(f"I don't understand the period {bk.code(spec)}. {PERIOD_HELP}")


@dataclass
class StudyKpis:
    study_key: str
    period: Period
    site_key: str | None = None
    calls: int = 0
    reached: int = 0
    prequalified: int = 0
    disqualified: int = 0
    top_failed: list[tuple[str, int]] = field(default_factory=list)
    referrals: dict[str, int] = field(default_factory=dict)
    callbacks_due: int = 0
    callbacks_missed: int = 0
    callbacks_on_time_pct: float | None = None
    pending_approvals_24h: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    by_coordinator: dict[str, dict[str, int]] = field(default_factory=dict)
    by_site: dict[str, dict[str, int]] = field(default_factory=dict)
    funnel: list[tuple[str, int]] = field(default_factory=list)
    median_days_call_to_referral: float | None = None
    median_days_referral_to_visit: float | None = None
    by_source: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def reached_rate(self) -> float | None:
        return pct(self.reached, self.calls)


def pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


def funnel_conversion(funnel: list[tuple[str, int]]) -> list[tuple[str, int, float | None]]:
    """(step, count, % of the previous step); the first step has None."""
    out: list[tuple[str, int, float | None]] = []
    prev: int | None = None
    for step, n in funnel:
        out.append((step, n, None if prev is None else pct(n, prev)))
        prev = n
    return out


NO_SOURCE = "(none)"


def study_kpis(ctx: AppContext, study_key: str, period: Period, *,
               site_key: str | None = None, use_rollups: bool = True) -> StudyKpis:
    """Every KPI of a study for a period. With site_key, the referral figures (referrals,
    by_site, funnel from `approved` on, medians are study-wide) are limited to that site.

    The additive figures and the medians come from the daily rollups when they are built
    (days with pending changes recomputed from the raw rows on the way); otherwise, or with
    use_rollups=False, from the raw rows. Both give the same numbers (README "KPIs")."""
    with ctx.db.session() as s:
        study = get_study(s, study_key, children=False)
        if study is None:
            raise UnknownStudy(f"There is no study {bk.code_word(study_key, 'by that name')}.")
        sid, start, end = study.id, period.start, period.end
        site_id: int | None = None
        sites = repo.study_sites(s, sid)
        if site_key is not None:
            by_key = {k: i for i, k in sites}
            if site_key.upper() not in by_key:
                raise DomainError(f"{study.key} has no site {bk.code(site_key)}. Sites: "
                                  f"{', '.join(by_key) or 'none'}.")
            site_id = by_key[site_key.upper()]
            site_key = site_key.upper()

        k = StudyKpis(study_key=study.key, period=period, site_key=site_key)
        grace = ctx.settings.callback_escalate_minutes
        figures = None
        if use_rollups:
            figures = rollups.rollup_figures(s, sid, period.tz, period.start_day, period.end_day,
                                             grace_minutes=grace)
            if figures is not None and study.timezone != period.tz:
                figures = None  # rollups are per study-local day; another zone reads raw rows
        if figures is None:
            figures = rollups.raw_figures(s, sid, start, end, grace_minutes=grace)
        calls = figures.calls
        for outcome, user, _src, n in calls:
            k.calls += n
            row = k.by_coordinator.setdefault(
                user, {"calls": 0, "reached": 0, "prequalified": 0, "disqualified": 0})
            row["calls"] += n
            if outcome in REACHED:
                k.reached += n
                row["reached"] += n
            if outcome == "pre_qualified":
                k.prequalified += n
                row["prequalified"] += n
            if outcome == "disqualified":
                k.disqualified += n
                row["disqualified"] += n
        k.by_coordinator = dict(sorted(k.by_coordinator.items()))
        k.top_failed = figures.top_failed(5)

        site_keys = dict(sites)
        for sid_, state, n in figures.transitions:
            if site_id is not None and sid_ != site_id:
                continue
            k.referrals[state] = k.referrals.get(state, 0) + n
            site = site_keys.get(sid_, "(no site)") if sid_ is not None else "(no site)"
            k.by_site.setdefault(site, {})[state] = n
        k.by_site = dict(sorted(k.by_site.items()))

        cb = figures.callbacks
        k.callbacks_due, k.callbacks_missed = cb["due"], cb["missed"]
        k.callbacks_on_time_pct = pct(cb["on_time"], cb["settled"])

        k.pending_approvals_24h = repo.pending_approvals_older_than(
            s, sid, at=min(end, ctx.clock.now()), older_than=PENDING_APPROVAL_AGE)
        k.unreachable = repo.unreachable_in(s, sid, start, end)

        counts = {"calls": k.calls, "reached": k.reached, "pre_qualified": k.prequalified,
                  **{st: k.referrals.get(st, 0) for st in states.ALL_STATES}}
        k.funnel = [(step, counts.get(step, 0)) for step, _ in FUNNEL_STEPS]

        k.median_days_call_to_referral = _round(figures.median_c2r)
        k.median_days_referral_to_visit = _round(figures.median_r2v)

        k.by_source = _by_source(study.options or {}, calls, figures)
    return k


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _by_source(options: dict[str, Any], calls: list[tuple[str, str, str | None, int]],
               figures: rollups.Figures) -> dict[str, dict[str, Any]]:
    configured: dict[str, Any] = options.get("lead_sources") or {}
    out: dict[str, dict[str, Any]] = {}

    def row(src: str | None) -> dict[str, Any]:
        key = src or NO_SOURCE
        cfg = configured.get(key) or {}
        return out.setdefault(key, {"label": cfg.get("label", key), "calls": 0, "prequalified": 0,
                                    "prequalified_rate": None, "leads": 0, "referrals": 0,
                                    "cost_per_referral": None})

    for outcome, _user, src, n in calls:
        r = row(src)
        r["calls"] += n
        if outcome == "pre_qualified":
            r["prequalified"] += n
    for src, n in figures.referrals_by_source.items():
        row(src)["referrals"] = n
    for src, n in figures.leads_by_source.items():
        row(src)["leads"] = n
    for key, r in out.items():
        r["prequalified_rate"] = pct(r["prequalified"], r["calls"])
        cost = (configured.get(key) or {}).get("cost_per_lead")
        if cost is not None and r["referrals"]:
            r["cost_per_referral"] = round(r["leads"] * float(cost) / r["referrals"], 2)
    return dict(sorted(out.items()))


# ---- rendering for /prescreen stats -------------------------------------------------------

def _fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{x:g}%"


def _fmt_days(x: float | None) -> str:
    return "—" if x is None else f"{x:g} d"


def _section(text: str) -> dict[str, Any]:
    if len(text) > 2900:
        text = text[:2890] + "\n…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _codes(codes: list[str], limit: int = 15) -> str:
    if not codes:
        return "none"
    more = f" (+{len(codes) - limit} more)" if len(codes) > limit else ""
    return ", ".join(codes[:limit]) + more


def format_stats(k: StudyKpis) -> tuple[str, list[dict[str, Any]]]:
    """Text + Block Kit for /prescreen stats (ref codes only, never patient identity)."""
    scope = k.study_key + (f" / site {k.site_key}" if k.site_key else "")
    title = f"{scope} — {k.period.label}"
    headline = (f"*Calls* {k.calls} · *reached* {k.reached} ({_fmt_pct(k.reached_rate)}) · "
                f"*pre-qualified* {k.prequalified} · *disqualified* {k.disqualified}")
    lines_ref = " · ".join(f"{states.label(st)} {k.referrals[st]}"
                           for st in states.ALL_STATES if k.referrals.get(st))
    failed = ", ".join(f"{q} ({n})" for q, n in k.top_failed) or "none"
    callbacks = (f"*Callbacks* due {k.callbacks_due} · missed {k.callbacks_missed} · "
                 f"on time {_fmt_pct(k.callbacks_on_time_pct)}")
    funnel = " → ".join(
        f"{label} {n}" + ("" if c is None else f" ({_fmt_pct(c)})")
        for (step, n, c), (_, label) in zip(funnel_conversion(k.funnel), FUNNEL_STEPS, strict=True)
    )
    medians = (f"*Median days* first call → referral {_fmt_days(k.median_days_call_to_referral)} · "
               f"referral → visit {_fmt_days(k.median_days_referral_to_visit)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Stats {title}"[:150]}},
        _section(headline + f"\n*Top failed criteria* {failed}"),
        _section(f"*Referrals* {lines_ref or 'no changes'}\n{callbacks}"),
        _section(f"*Funnel* {funnel}\n{medians}"),
        _section(f"*Pending approval > 24 h* {_codes(k.pending_approvals_24h)}\n"
                 f"*Became unreachable* {_codes(k.unreachable)}"),
    ]
    if k.by_coordinator:
        rows = [f"<@{u}> calls {r['calls']} · reached {r['reached']} · pre-qualified "
                f"{r['prequalified']}" for u, r in sorted(k.by_coordinator.items())]
        blocks.append(_section("*Per coordinator*\n" + "\n".join(rows[:40])))
    if k.by_site:
        rows = [f"{site}: " + " · ".join(f"{states.label(st)} {n}" for st, n in sorted(r.items()))
                for site, r in sorted(k.by_site.items())]
        blocks.append(_section("*Per site*\n" + "\n".join(rows[:40])))
    if k.by_source:
        rows = []
        for r in k.by_source.values():
            cost = "" if r["cost_per_referral"] is None else f" · ${r['cost_per_referral']:,.2f}/referral"
            rows.append(f"{r['label']}: calls {r['calls']} · pre-qualified {r['prequalified']} "
                        f"({_fmt_pct(r['prequalified_rate'])}) · referrals {r['referrals']}{cost}")
        blocks.append(_section("*Per lead source*\n" + "\n".join(rows[:40])))
    text = f"Stats {title}: {k.calls} calls, {k.reached} reached, {k.prequalified} pre-qualified"
    return text, blocks[:50]


# ---- /prescreen stats [STUDY] [period] [SITE] ---------------------------------------------

STATS_USAGE = "/prescreen stats [STUDY] [today|yesterday|7d|30d|YYYY-MM-DD|FROM..TO] [SITE]"
MAX_STUDIES_IN_REPLY = 5


@dataclass(frozen=True)
class StatsRequest:
    """What `/prescreen stats ARGS` asks for, validated: (study, period) pairs and a site."""

    items: list[tuple[str, Period]]
    site: str | None
    more: list[str]  # the caller's other studies, not shown (too many for one reply)
    rollups_ready: bool = True  # every study's rollups are built: any period answers at once

    @property
    def days(self) -> int:
        return max((p.days for _k, p in self.items), default=0)


def parse_stats_request(ctx: AppContext, user_id: str, args: list[str]) -> StatsRequest:
    """Check the arguments against the caller's studies (fast; no KPI queries yet)."""
    rest = list(args)
    with ctx.db.session() as s:
        all_keys = {k.upper() for k in study_keys(s)}
        named = get_study(s, rest[0]) if rest and rest[0].upper() in all_keys else None
        if named is not None and named.active:
            require_role(s, user_id, named, Action.VIEW_STATS)
        studies = require_somewhere(s, user_id, Action.VIEW_STATS)
        mine = {study.key: (study.timezone, [site.key for site in study.sites]) for study in studies}
        grace = ctx.settings.callback_escalate_minutes
        built = {study.key for study in studies
                 if rollups.built_with(s, study.id) == (study.timezone, grace)}
    keys = sorted(mine)
    if rest and rest[0].upper() in all_keys:
        key = rest.pop(0).upper()
        if key not in mine:  # a study that is no longer active
            raise UnknownStudy(f"{bk.code_word(key)} is not an active study. Your studies: "
                               f"{', '.join(keys)}.")
        keys = [key]
    site: str | None = None
    if len(keys) == 1 and rest and rest[-1].upper() in mine[keys[0]][1]:
        site = rest.pop().upper()
    spec = " ".join(rest)
    if len(rest) > 1 or (rest and rest[0].isalpha() and rest[0].lower() not in ("today", "yesterday")):
        raise DomainError(f"{bk.code_word(spec)} is not one of your studies ({', '.join(sorted(mine))}) or a "
                          f"period. {PERIOD_HELP} Usage: `{STATS_USAGE}`")
    now = ctx.clock.now()
    items = []
    for key in keys[:MAX_STUDIES_IN_REPLY]:
        tz = mine[key][0]
        items.append((key, period_for(spec, tz=tz, today=now.astimezone(ZoneInfo(tz)).date())))
    return StatsRequest(items=items, site=site, more=keys[MAX_STUDIES_IN_REPLY:],
                        rollups_ready=all(key in built for key, _p in items))


def render_stats(ctx: AppContext, req: StatsRequest) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    blocks: list[dict[str, Any]] = []
    for key, period in req.items:
        text, bl = format_stats(study_kpis(ctx, key, period, site_key=req.site))
        texts.append(text)
        if blocks:
            blocks.append({"type": "divider"})
        blocks.extend(bl)
    if req.more:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Also yours: {', '.join(req.more)}. "
                                       "Name one: `/prescreen stats STUDY`."}]})
    return "\n".join(texts), blocks[:50]


