"""`/prescreen next`, `/prescreen queue` and the App Home "My queue": what a coordinator should
work on, most urgent first, with the reason each item waits.

Order for `next`: a requested callback due now; then leads nobody has called yet, oldest intake
first; then follow-up attempts planned by the cadence. Only candidates whose calling window is
open now (their own time zone and state rules) and who are not on do-not-call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot.access import Action, nowhere_text, require_role, require_somewhere
from bot.callbacks import windows
from bot.context import AppContext
from bot.errors import NotAllowed, UnknownStudy
from bot.leads import reasons
from storage.models import Candidate, Member, Study
from storage.repositories import queue as repo
from storage.repositories import studies as study_repo

DUE_SOON = dt.timedelta(minutes=5)


def _special_regions() -> list[str]:
    return sorted((windows._rules().get("states") or {}).keys())


def _is_open(study: Study, region: str | None, tz: str, now: dt.datetime) -> bool:
    rule = windows.rule_for(study, region)
    return windows.next_allowed(rule, tz, now) == now


def open_windows(studies: dict[int, Study], pairs: list[tuple[int, str]],
                 now: dt.datetime) -> repo.OpenWindows:
    """For each (study, candidate time zone): is calling allowed now, and which states differ."""
    out: dict[tuple[int, str], tuple[bool, frozenset[str], frozenset[str]]] = {}
    special = _special_regions()
    for study_id, tz in pairs:
        study = studies[study_id]
        try:
            default = _is_open(study, None, tz, now)
        except (ValueError, KeyError):
            continue  # an unknown time zone: never callable until fixed
        opened = frozenset(s for s in special if _is_open(study, s, tz, now) and not default)
        closed = frozenset(s for s in special if default and not _is_open(study, s, tz, now))
        out[(study_id, tz)] = (default, opened, closed)
    return repo.OpenWindows(out)


@dataclass
class Scope:
    member: Member
    studies: dict[int, Study]


def _scope(session: Session, user_id: str, study_key: str | None) -> Scope:
    if study_key:
        named = study_repo.get_study(session, study_key)
        if named is not None and named.active:
            require_role(session, user_id, named, Action.WORK_QUEUE)
    member = study_repo.get_member(session, user_id)
    if member is None:
        raise NotAllowed(nowhere_text([], Action.WORK_QUEUE))
    mine = {s.id: s for s in require_somewhere(session, user_id, Action.WORK_QUEUE)}
    if study_key:
        picked = {sid: s for sid, s in mine.items() if s.key == study_key.upper()}
        if not picked:
            keys = ", ".join(sorted(s.key for s in mine.values()))
            raise UnknownStudy(f"You don't work on {bk.code_word(study_key, 'that study')}. "
                               f"Your studies: {keys}.")
        mine = picked
    return Scope(member, mine)


@dataclass
class NextLead:
    ref: str
    study_key: str
    why: str
    attempts: int
    max_attempts: int
    candidate_tz: str
    reason: str


@dataclass
class NoLead:
    message: str


def next_lead(ctx: AppContext, member: str, study_key: str | None = None) -> NextLead | NoLead:
    """The caller's most urgent callable lead now (`member` is the Slack user id)."""
    now = ctx.clock.now()
    soon = now + DUE_SOON
    with ctx.db.session() as session:
        scope = _scope(session, member, study_key)
        owner, ids = scope.member.id, list(scope.studies)
        win = open_windows(scope.studies, repo.owner_timezones(session, owner, ids), now)
        cb = repo.due_callback(session, owner, ids, kind="requested", due_before=soon, windows=win)
        if cb is not None:
            c = cb.candidate
            late = now - cb.due_at
            when = (f"{_ago(late)} overdue" if late > dt.timedelta(minutes=1)
                    else "due now")
            return _lead(c, f"callback {when} ({_local(cb.due_at, c.timezone)} their time)")
        cand = repo.oldest_untouched(session, owner, ids, windows=win)
        if cand is not None:
            return _lead(cand, f"new lead, not called yet · waiting {_ago(now - cand.created_at)}"
                               + (f" · source {cand.source}" if cand.source else ""))
        cb = repo.due_callback(session, owner, ids, kind="cadence", due_before=soon, windows=win)
        if cb is not None:
            c = cb.candidate
            return _lead(c, f"follow-up attempt {c.attempts + 1} due "
                            f"{_local(cb.due_at, c.timezone)} their time")
        closed = repo.count_waiting_for_window(session, owner, ids, windows=win, due_before=soon)
        if closed:
            who = "1 lead waits" if closed == 1 else f"{closed} leads wait"
            return NoLead(f"Nothing callable right now: {who} for their calling window to open. "
                          "Try again later, or see `/prescreen queue`.")
        return NoLead("Your queue is clear: no callbacks due and no new leads. "
                      "`/prescreen queue` shows everything you own.")


def _lead(c: Candidate, why: str) -> NextLead:
    reason = reasons.derive(set_reason=c.wait_reason, attempts=c.attempts,
                            last_outcome=c.last_outcome, referral_state=None)
    return NextLead(c.ref_code, c.study.key, why, c.attempts, c.study.max_attempts, c.timezone,
                    reasons.label(reason))


def _ago(delta: dt.timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} d"


def _local(at: dt.datetime, tz: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return f"{local:%a %H:%M}"


# ----- the list -----

@dataclass
class WorkItem:
    ref: str
    study_key: str
    what: str  # callback due 14:00 / new lead · 2 d / pending approval · 1 d
    reason: str
    window_closed: bool


@dataclass
class WorkQueue:
    items: list[WorkItem]
    total: int


def my_work(ctx: AppContext, user_id: str, study_key: str | None = None,
            limit: int = 20) -> WorkQueue:
    """The caller's open items sorted by urgency, then aging (oldest first)."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        scope = _scope(session, user_id, study_key)
        return work_for(session, scope.member, scope.studies, now, limit)


def work_for(session: Session, member: Member, studies: dict[int, Study], now: dt.datetime,
             limit: int) -> WorkQueue:
    rows, total = repo.queue(session, member.id, list(studies), now=now, due_before=now + DUE_SOON,
                             limit=limit)
    items = []
    for r in rows:
        c = r.candidate
        reason = reasons.derive(set_reason=c.wait_reason, attempts=c.attempts,
                                last_outcome=c.last_outcome, referral_state=r.referral_state)
        if r.tier == 0:
            what = f"callback due {_local(r.at, c.timezone)} their time"
        elif r.tier == 1:
            what = f"new lead · waiting {_ago(now - c.created_at)}"
        elif r.tier == 2:
            what = f"attempt {c.attempts + 1} of {c.study.max_attempts}"
        elif r.tier == 3:
            since = r.referral_since or r.at
            what = f"{(r.referral_state or '').replace('_', ' ')} · {_ago(now - since)}"
        else:
            what = f"callback {_local(r.at, c.timezone)} their time"
        closed = r.tier in (0, 1, 2) and not _callable_now(c, now)
        items.append(WorkItem(c.ref_code, c.study.key, what, reasons.label(reason), closed))
    return WorkQueue(items, total)


def _callable_now(c: Candidate, now: dt.datetime) -> bool:
    try:
        return _is_open(c.study, c.region, c.timezone, now)
    except (ValueError, KeyError):
        return False
