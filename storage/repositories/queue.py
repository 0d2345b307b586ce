"""Work-queue reads and lead-assignment claims.

The calling-window filter is pushed into SQL: the caller computes, per study and candidate time
zone, which regions may be called now, and `window_condition` turns that into a WHERE clause, so
100k open leads are filtered by an index instead of row by row in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, func, or_, select, update
from sqlalchemy.orm import Session, aliased, joinedload

from storage.models import Callback, Candidate, Member, Referral
from storage.vocabulary import CALLBACK_OPEN_STATUSES

LEAD_STATUS = "needs_call"
# candidate statuses that keep an item in a coordinator's queue
WORKING_STATUSES = ("new", "needs_call", "callback", "considering", "referred")
# referral states where the coordinator still follows the item through
WAITING_REFERRAL_STATES = ("pending_approval", "approved", "sent_to_site", "site_contacted")


@dataclass(frozen=True)
class OpenWindows:
    """Per (study id, time zone): whether the default rule is open, and the regions whose own
    rule differs from the default (open or closed) now."""

    by_tz: dict[tuple[int, str], tuple[bool, frozenset[str], frozenset[str]]]


def window_condition(windows: OpenWindows) -> Any:
    clauses = []
    for (study_id, tz), (default_open, open_special, closed_special) in windows.by_tz.items():
        base = and_(Candidate.study_id == study_id, Candidate.timezone == tz)
        if default_open:
            if closed_special:
                clauses.append(and_(base, or_(Candidate.region.is_(None),
                                              Candidate.region.notin_(sorted(closed_special)))))
            else:
                clauses.append(base)
        elif open_special:
            clauses.append(and_(base, Candidate.region.in_(sorted(open_special))))
    return or_(*clauses) if clauses else false()


def owner_timezones(session: Session, owner_id: int, study_ids: Sequence[int]) -> list[tuple[int, str]]:
    """(study id, time zone) for every time zone among the owner's candidates.

    A loose index scan on (owner_id, timezone): one tiny query per distinct zone instead of a
    DISTINCT over all the owner's rows. Zones of closed candidates may be included; that only
    adds a clause to the filter."""
    zones: list[str] = []
    prev = ""
    while True:
        tz = session.scalar(select(func.min(Candidate.timezone))
                            .where(Candidate.owner_id == owner_id, Candidate.timezone > prev))
        if tz is None:
            break
        zones.append(tz)
        prev = tz
    return [(sid, tz) for sid in study_ids for tz in zones]


def _callable() -> list[Any]:
    return [Candidate.do_not_call.is_(False)]


def due_callback(session: Session, owner_id: int, study_ids: Sequence[int], *, kind: str,
                 due_before: dt.datetime, windows: OpenWindows) -> Callback | None:
    """The owner's earliest open callback of `kind` due before `due_before`, window open."""
    stmt = (select(Callback).join(Candidate, Candidate.id == Callback.candidate_id)
            .where(Callback.owner_id == owner_id, Callback.status.in_(CALLBACK_OPEN_STATUSES),
                   Callback.kind == kind, Callback.due_at <= due_before,
                   Callback.study_id.in_(study_ids), *_callable(), window_condition(windows))
            .options(joinedload(Callback.candidate).joinedload(Candidate.study))
            .order_by(Callback.due_at, Callback.id).limit(1))
    return session.scalars(stmt).first()


def oldest_untouched(session: Session, owner_id: int, study_ids: Sequence[int], *,
                     windows: OpenWindows) -> Candidate | None:
    stmt = (select(Candidate)
            .where(Candidate.owner_id == owner_id, Candidate.status == LEAD_STATUS,
                   Candidate.attempts == 0, Candidate.study_id.in_(study_ids), *_callable(),
                   window_condition(windows))
            .options(joinedload(Candidate.study))
            .order_by(Candidate.created_at, Candidate.id).limit(1))
    return session.scalars(stmt).first()


def count_waiting_for_window(session: Session, owner_id: int, study_ids: Sequence[int], *,
                             windows: OpenWindows, due_before: dt.datetime) -> int:
    """Callable items of the owner whose calling window is closed now."""
    has_due = (select(Callback.id).where(Callback.candidate_id == Candidate.id,
                                         Callback.status.in_(CALLBACK_OPEN_STATUSES),
                                         Callback.due_at <= due_before).exists())
    stmt = (select(func.count()).select_from(Candidate)
            .where(Candidate.owner_id == owner_id, Candidate.study_id.in_(study_ids),
                   *_callable(), ~window_condition(windows),
                   or_(and_(Candidate.status == LEAD_STATUS, Candidate.attempts == 0), has_due)))
    return int(session.scalar(stmt) or 0)


# ----- the queue list -----

@dataclass
class QueueRow:
    candidate: Candidate
    tier: int  # 0 callback due, 1 untouched, 2 follow-up due, 3 referral waiting, 4 later
    at: dt.datetime  # when the item became due / started waiting
    callback_kind: str | None
    referral_state: str | None
    referral_since: dt.datetime | None


def queue(session: Session, owner_id: int, study_ids: Sequence[int], *, now: dt.datetime,
          due_before: dt.datetime, limit: int) -> tuple[list[QueueRow], int]:
    """The owner's open items, most urgent first, and how many there are in all.

    Tiers, each oldest / most overdue first: 0 requested callbacks due, 1 leads nobody has
    called, 2 follow-ups due (planned attempts, or unanswered with nothing planned yet),
    3 referrals waiting on approval or the site, 4 callbacks later on. One small indexed query
    per tier, stopping once `limit` items are found, so a huge queue costs little more than a
    short one (the total is one count)."""
    base = [Candidate.owner_id == owner_id, Candidate.study_id.in_(study_ids),
            Candidate.do_not_call.is_(False)]
    open_cb = (select(Callback.id).where(Callback.candidate_id == Candidate.id,
                                         Callback.status.in_(CALLBACK_OPEN_STATUSES)).exists())
    rows: list[QueueRow] = []
    seen: set[int] = set()

    def callbacks(tier: int, *where: Any) -> None:
        stmt = (select(Callback).join(Candidate, Candidate.id == Callback.candidate_id)
                .where(Callback.owner_id == owner_id, Callback.status.in_(CALLBACK_OPEN_STATUSES), *where,
                       *base, Candidate.status.in_(WORKING_STATUSES))
                .options(joinedload(Callback.candidate).joinedload(Candidate.study))
                .order_by(Callback.due_at, Callback.id).limit(limit - len(rows)))
        for cb in session.scalars(stmt).unique():
            add(QueueRow(cb.candidate, tier, cb.due_at, cb.kind, None, None))

    def candidates(tier: int, order: Any, *where: Any) -> None:
        stmt = (select(Candidate).where(*base, *where).options(joinedload(Candidate.study))
                .order_by(order, Candidate.id).limit(limit - len(rows)))
        for c in session.scalars(stmt).unique():
            add(QueueRow(c, tier, c.last_called_at or c.created_at, None, None, None))

    def add(row: QueueRow) -> None:
        if row.candidate.id not in seen and len(rows) < limit:
            seen.add(row.candidate.id)
            rows.append(row)

    steps = [
        lambda: callbacks(0, Callback.kind == "requested", Callback.due_at <= due_before),
        lambda: candidates(1, Candidate.created_at, Candidate.status == LEAD_STATUS,
                           Candidate.attempts == 0),
        lambda: callbacks(2, Callback.kind != "requested", Callback.due_at <= due_before),
        lambda: candidates(2, Candidate.last_called_at, Candidate.attempts > 0,
                           Candidate.status.in_(("needs_call", "considering", "callback")), ~open_cb),
        lambda: referrals(),
        lambda: callbacks(4, Callback.due_at > due_before),
    ]

    def referrals() -> None:
        stmt = (select(Referral, Candidate).join(Candidate, Candidate.id == Referral.candidate_id)
                .where(*base, Referral.state.in_(WAITING_REFERRAL_STATES))
                .options(joinedload(Candidate.study))
                .order_by(Referral.updated_at, Referral.id).limit(limit - len(rows)))
        for r, c in session.execute(stmt).unique():
            add(QueueRow(c, 3, r.updated_at, None, r.state, r.updated_at))

    for step in steps:
        if len(rows) >= limit:
            break
        step()
    ref = aliased(Referral)
    waiting_referral = (select(ref.id).where(ref.candidate_id == Candidate.id,
                                             ref.state.in_(WAITING_REFERRAL_STATES)).exists())
    total_stmt = (select(func.count()).select_from(Candidate)
                  .where(*base, Candidate.status.in_(WORKING_STATUSES),
                         or_(Candidate.status != "referred", waiting_referral)))
    return rows, int(session.scalar(total_stmt) or 0)


# ----- assignment -----

def unowned_leads(session: Session, study_id: int, limit: int) -> list[int]:
    """Unowned needs_call leads of a study, oldest first (locked, skipping locked ones, on PG)."""
    stmt = (select(Candidate.id)
            .where(Candidate.study_id == study_id, Candidate.status == LEAD_STATUS,
                   Candidate.owner_id.is_(None), Candidate.do_not_call.is_(False))
            .order_by(Candidate.created_at, Candidate.id).limit(limit)
            .with_for_update(skip_locked=True))
    return list(session.scalars(stmt))


def studies_with_unowned_leads(session: Session) -> list[int]:
    stmt = (select(Candidate.study_id).distinct()
            .where(Candidate.status == LEAD_STATUS, Candidate.owner_id.is_(None),
                   Candidate.do_not_call.is_(False)))
    return list(session.scalars(stmt))


def claim_leads(session: Session, ids: Sequence[int], owner_id: int, now: dt.datetime) -> list[int]:
    """Give still-unowned leads to `owner_id`; returns the ids this caller won."""
    if not ids:
        return []
    stmt = (update(Candidate).where(Candidate.id.in_(ids), Candidate.owner_id.is_(None))
            .values(owner_id=owner_id, assigned_at=now)
            .returning(Candidate.id).execution_options(synchronize_session=False))
    return list(session.scalars(stmt))


def open_load(session: Session, study_id: int, member_ids: Sequence[int]) -> dict[int, int]:
    """Open items (working statuses) each member owns in the study."""
    stmt = (select(Candidate.owner_id, func.count())
            .where(Candidate.study_id == study_id, Candidate.owner_id.in_(member_ids),
                   Candidate.status.in_(WORKING_STATUSES))
            .group_by(Candidate.owner_id))
    counts = {mid: 0 for mid in member_ids}
    for owner_id, n in session.execute(stmt):
        counts[owner_id] = int(n)
    return counts


def last_assignee(session: Session, study_id: int) -> int | None:
    stmt = (select(Candidate.owner_id)
            .where(Candidate.study_id == study_id, Candidate.assigned_at.is_not(None))
            .order_by(Candidate.assigned_at.desc(), Candidate.id.desc()).limit(1))
    return session.scalars(stmt).first()


def refs(session: Session, ids: Sequence[int]) -> list[str]:
    if not ids:
        return []
    return list(session.scalars(select(Candidate.ref_code).where(Candidate.id.in_(ids))
                                .order_by(Candidate.id)))


def members(session: Session, ids: Sequence[int]) -> dict[int, Member]:
    return {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(ids)))}


def nudge_assigned_at(session: Session, candidate_id: int, at: dt.datetime) -> None:
    """Move an assigned lead's assigned_at to `at` (so it sorts as the most recent assignment)."""
    cand = session.get(Candidate, candidate_id)
    if cand is not None and cand.assigned_at is not None:
        cand.assigned_at = at
