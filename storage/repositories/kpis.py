"""KPI aggregates: every figure is one GROUP BY (or COUNT) query run by the database.

All functions take a study id and a half-open UTC window [start, end). The definitions are
documented in README.md ("KPIs"); bot/kpis.py assembles them for digest, stats and export.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Date, Select, and_, cast, exists, func, select, text
from sqlalchemy.orm import Session, aliased

from storage.models import Callback, Candidate, Member, PrescreenCall, Referral, ReferralEvent, Site


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _days_between(session: Session, later: Any, earlier: Any) -> ColumnElement[float]:
    """(later - earlier) in fractional days, on both backends."""
    if _dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _median(session: Session, expr: ColumnElement[float], *where: Any) -> float | None:
    """Median of `expr` over the Referral rows matching `where` (NULLs ignored), in SQL."""
    where = (*where, expr.is_not(None))
    if _dialect(session) == "postgresql":
        value = session.scalar(
            select(func.percentile_cont(0.5).within_group(expr)).select_from(Referral).where(*where)
        )
        return None if value is None else float(value)
    ranked = (
        select(expr.label("v"), func.row_number().over(order_by=expr).label("rn"),
               func.count().over().label("n"))
        .select_from(Referral).where(*where).subquery()
    )
    middle = session.scalars(
        select(ranked.c.v).where(ranked.c.rn.in_(((ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2)))
    ).all()
    return float(sum(middle) / len(middle)) if middle else None


def call_breakdown(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                   ) -> list[tuple[str, str, str | None, int]]:
    """Calls in the window counted per (outcome, coordinator slack id, candidate source): one
    GROUP BY that the KPIs fold into totals, per-coordinator and per-source figures."""
    counts = (
        select(PrescreenCall.outcome, PrescreenCall.coordinator_id, Candidate.source,
               func.count().label("n"))
        .select_from(PrescreenCall)
        .join(Candidate, Candidate.id == PrescreenCall.candidate_id)
        .where(PrescreenCall.study_id == study_id, PrescreenCall.called_at >= start,
               PrescreenCall.called_at < end)
        .group_by(PrescreenCall.outcome, PrescreenCall.coordinator_id, Candidate.source)
        .subquery()
    )
    rows = session.execute(
        select(counts.c.outcome, Member.slack_user_id, counts.c.source, counts.c.n)
        .join(Member, Member.id == counts.c.coordinator_id)
    ).all()
    return [(o, u, src, int(n)) for o, u, src, n in rows]


def top_failed_criteria(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                        *, limit: int = 5) -> list[tuple[str, int]]:
    """Question ids most often failed by disqualified calls (JSON array unnested in SQL)."""
    params = {"study_id": study_id, "start": start.astimezone(dt.UTC).replace(tzinfo=None),
              "end": end.astimezone(dt.UTC).replace(tzinfo=None), "limit": limit}
    if _dialect(session) == "postgresql":
        sql = text(
            "SELECT f.qid, count(*) AS n FROM prescreen_calls c "
            "CROSS JOIN LATERAL json_array_elements_text(c.failed_criteria) AS f(qid) "
            "WHERE c.study_id = :study_id AND c.called_at >= :start AND c.called_at < :end "
            "AND c.outcome = 'disqualified' "
            "GROUP BY f.qid ORDER BY n DESC, f.qid LIMIT :limit"
        )
    else:
        sql = text(
            "SELECT f.value AS qid, count(*) AS n FROM prescreen_calls c, "
            "json_each(c.failed_criteria) AS f "
            "WHERE c.study_id = :study_id AND c.called_at >= :start AND c.called_at < :end "
            "AND c.outcome = 'disqualified' "
            "GROUP BY f.value ORDER BY n DESC, f.value LIMIT :limit"
        )
    return [(str(q), int(n)) for q, n in session.execute(sql, params).all()]


def _events_in(study_id: int, start: dt.datetime, end: dt.datetime) -> list[Any]:
    return [Referral.study_id == study_id, ReferralEvent.at >= start, ReferralEvent.at < end]


def referral_transitions(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                         ) -> list[tuple[int | None, str, int]]:
    """Transitions into each referral state during the window, per site id: (site id, state, n)."""
    rows = session.execute(
        select(Referral.site_id, ReferralEvent.to_state, func.count())
        .select_from(ReferralEvent)
        .join(Referral, Referral.id == ReferralEvent.referral_id)
        .where(*_events_in(study_id, start, end))
        .group_by(Referral.site_id, ReferralEvent.to_state)
    ).all()
    return [(site, state, int(n)) for site, state, n in rows]


def referrals_by_source(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                        ) -> dict[str | None, int]:
    """Referrals created in the window, per candidate source."""
    rows = session.execute(
        select(Candidate.source, func.count())
        .select_from(Referral)
        .join(Candidate, Candidate.id == Referral.candidate_id)
        .where(Referral.study_id == study_id, Referral.created_at >= start,
               Referral.created_at < end)
        .group_by(Candidate.source)
    ).all()
    return {s: int(n) for s, n in rows}


def leads_by_source(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                    ) -> dict[str | None, int]:
    """Candidates created in the window, per source."""
    rows = session.execute(
        select(Candidate.source, func.count())
        .where(Candidate.study_id == study_id, Candidate.created_at >= start,
               Candidate.created_at < end)
        .group_by(Candidate.source)
    ).all()
    return {s: int(n) for s, n in rows}


def callback_counts(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                    *, grace_minutes: int) -> dict[str, int]:
    """Callbacks due in the window (not cancelled): due, missed, settled (done or missed),
    on_time (completed no later than due + grace)."""
    if _dialect(session) == "postgresql":
        on_time_cond = Callback.completed_at <= Callback.due_at + func.make_interval(
            0, 0, 0, 0, 0, grace_minutes)
    else:
        on_time_cond = (func.julianday(Callback.completed_at)
                        <= func.julianday(Callback.due_at) + grace_minutes / 1440.0 + 1e-8)
    settled = Callback.status.in_(("done", "missed"))
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Callback.status == "missed"),
            func.count().filter(settled),
            func.count().filter(and_(settled, Callback.completed_at.is_not(None), on_time_cond)),
        ).where(Callback.study_id == study_id, Callback.due_at >= start, Callback.due_at < end,
                Callback.status != "cancelled")
    ).one()
    due, missed, settled_n, on_time = (int(x or 0) for x in row)
    return {"due": due, "missed": missed, "settled": settled_n, "on_time": on_time}


def pending_approvals_older_than(session: Session, study_id: int, *, at: dt.datetime,
                                 older_than: dt.timedelta, limit: int = 200) -> list[str]:
    """Ref codes of referrals that were waiting for approval at `at` for longer than
    `older_than` (created before at - older_than, no decision recorded before `at`)."""
    left = aliased(ReferralEvent)
    rows = session.scalars(
        select(Candidate.ref_code)
        .join(Referral, Referral.candidate_id == Candidate.id)
        .where(Referral.study_id == study_id, Referral.created_at <= at - older_than,
               ~exists().where(left.referral_id == Referral.id,
                               left.from_state == "pending_approval", left.at < at))
        .order_by(Referral.created_at, Referral.id)
        .limit(limit)
    ).all()
    return list(rows)


def unreachable_in(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                   *, limit: int = 200) -> list[str]:
    """Ref codes of candidates marked unreachable in the window."""
    return list(session.scalars(
        select(Candidate.ref_code)
        .where(Candidate.study_id == study_id, Candidate.unreachable_at >= start,
               Candidate.unreachable_at < end)
        .order_by(Candidate.unreachable_at, Candidate.id)
        .limit(limit)
    ).all())


def _call_to_referral(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                      ) -> tuple[ColumnElement[float], list[Any]]:
    first_call = (
        select(func.min(PrescreenCall.called_at))
        .where(PrescreenCall.candidate_id == Referral.candidate_id)
        .correlate(Referral).scalar_subquery()
    )
    expr = _days_between(session, Referral.created_at, first_call)
    return expr, [Referral.study_id == study_id, Referral.created_at >= start,
                  Referral.created_at < end]


def median_days_call_to_referral(session: Session, study_id: int, start: dt.datetime,
                                 end: dt.datetime) -> float | None:
    """Referrals created in the window: median days from the candidate's first call."""
    expr, where = _call_to_referral(session, study_id, start, end)
    return _median(session, expr, *where)


def call_to_referral_days(session: Session, study_id: int, start: dt.datetime,
                          end: dt.datetime) -> list[float]:
    """The values behind median_days_call_to_referral (for the daily rollups)."""
    expr, where = _call_to_referral(session, study_id, start, end)
    return _values(session, expr, *where)


def _referral_to_visit(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                       ) -> tuple[ColumnElement[float], list[Any]]:
    scheduled = Referral.id.in_(
        select(ReferralEvent.referral_id).where(ReferralEvent.to_state == "visit_scheduled",
                                                ReferralEvent.at >= start, ReferralEvent.at < end))
    if _dialect(session) == "postgresql":
        expr: ColumnElement[float] = (
            Referral.visit_date - cast(Referral.created_at, Date)
        ) * 1.0
    else:
        expr = func.julianday(Referral.visit_date) - func.julianday(func.date(Referral.created_at))
    return expr, [Referral.study_id == study_id, Referral.visit_date.is_not(None), scheduled]


def median_days_referral_to_visit(session: Session, study_id: int, start: dt.datetime,
                                  end: dt.datetime) -> float | None:
    """Referrals moved to visit_scheduled in the window: median days from referral creation
    (UTC date) to the visit date."""
    expr, where = _referral_to_visit(session, study_id, start, end)
    return _median(session, expr, *where)


def referral_to_visit_days(session: Session, study_id: int, start: dt.datetime,
                           end: dt.datetime) -> list[float]:
    """The values behind median_days_referral_to_visit (for the daily rollups)."""
    expr, where = _referral_to_visit(session, study_id, start, end)
    return _values(session, expr, *where)


def _values(session: Session, expr: ColumnElement[float], *where: Any) -> list[float]:
    return [float(v) for v in session.scalars(
        select(expr).select_from(Referral).where(*where, expr.is_not(None)).order_by(expr))]


def study_sites(session: Session, study_id: int) -> Sequence[tuple[int, str]]:
    return [(i, k) for i, k in session.execute(
        select(Site.id, Site.key).where(Site.study_id == study_id).order_by(Site.key)).all()]


def counted_instants(study_id: int) -> list[tuple[Any, Select[Any]]]:
    """Every instant column some figure above is counted by (calls, leads, referrals, referral
    events, callbacks due), each with a SELECT (no columns yet) of the study's rows."""
    def of(model: Any) -> Select[Any]:
        return select().select_from(model).where(model.study_id == study_id)

    events = (select().select_from(ReferralEvent)
              .join(Referral, Referral.id == ReferralEvent.referral_id)
              .where(Referral.study_id == study_id))
    return [(PrescreenCall.called_at, of(PrescreenCall)), (Candidate.created_at, of(Candidate)),
            (Referral.created_at, of(Referral)), (Callback.due_at, of(Callback)),
            (ReferralEvent.at, events)]


def instants_in(session: Session, study_id: int, start: dt.datetime, end: dt.datetime,
                ) -> list[dt.datetime]:
    """Every counted instant in the window: where a window has anything to count."""
    out: list[dt.datetime] = []
    for col, rows in counted_instants(study_id):
        out += session.scalars(rows.add_columns(col).where(col >= start, col < end))
    return out
