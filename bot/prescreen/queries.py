"""Read use cases: a candidate's status (PHI only to study staff, audited), find by phone or
name, and the coordinator's queue for App Home."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bot import blocks as bk
from bot.access import Action, allows, refusal_text, require_role, require_somewhere, studies_where
from bot.context import AppContext
from bot.errors import InvalidInput, NotAllowed, UnknownCandidate, UnknownStudy
from bot.leads.queue import work_for
from bot.phones import normalise_phone
from bot.prescreen.outcomes import STATUS_LABELS, label
from bot.referrals import states as ref_states
from storage import audit
from storage.models import Candidate, Study
from storage.repositories import candidate_notes as notes_repo
from storage.repositories import candidates as cand_repo
from storage.repositories import referrals as ref_repo
from storage.repositories import studies as study_repo

REF_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,9}-\d{4,}$")


@dataclass
class CandidateStatus:
    ref: str
    study_key: str
    status: str
    attempts: int
    max_attempts: int
    last_outcome: str | None
    last_called_at: dt.datetime | None
    next_callback: dt.datetime | None
    timezone: str
    referral_state: str | None
    do_not_call: bool
    viewer_tz: str
    name: str | None = None  # PHI: only for study staff, and only with PHI_SURFACE=slack
    phone: str | None = None
    may_view_phi: bool = False  # the viewer's role may see identifiers (on the secure page)
    last_from_ringcentral: bool = False  # the last attempt came from RingCentral's call log


def is_ref(text: str) -> bool:
    return bool(REF_PATTERN.match(text.strip()))


def candidate_status(ctx: AppContext, user_id: str, ref: str) -> CandidateStatus:
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref)
        if cand is None:
            mine = [s.key for s, _ in study_repo.studies_for(session, user_id)]
            raise UnknownCandidate(
                f"No candidate {bk.echo_ref(ref)}. Codes look like {mine[0] if mine else 'ALZ'}-0042; "
                + ("search by phone or name on the secure page (`/prescreen find`)."
                   if ctx.settings.portal else "try `/prescreen find` with a phone number.")
            )
        role = study_repo.role_in(session, user_id, cand.study_id)
        if not allows(role, Action.VIEW_CANDIDATE):
            raise NotAllowed(refusal_text(cand.study.key, role, Action.VIEW_CANDIDATE))
        member = study_repo.get_member(session, user_id)
        nxt = cand_repo.next_callback(session, cand.id)
        ref_row = cand_repo.latest_referral(session, cand.id)
        out = CandidateStatus(
            ref=cand.ref_code, study_key=cand.study.key, status=cand.status, attempts=cand.attempts,
            max_attempts=cand.study.max_attempts, last_outcome=cand.last_outcome,
            last_called_at=cand.last_called_at, next_callback=nxt.due_at if nxt else None,
            timezone=cand.timezone, referral_state=ref_row.state if ref_row else None,
            do_not_call=cand.do_not_call, viewer_tz=member.timezone if member else "UTC",
        )
        out.may_view_phi = allows(role, Action.VIEW_PHI)
        last = notes_repo.attempts(session, cand.id, limit=1)
        out.last_from_ringcentral = bool(last) and last[0].from_ringcentral
        if out.may_view_phi and not ctx.settings.portal:
            out.name = ctx.cipher.decrypt(cand.name_enc)
            out.phone = ctx.cipher.decrypt(cand.phone_enc)
            audit.record(session, actor=user_id, action="phi.viewed", entity="candidate",
                         entity_id=cand.ref_code, after={"fields": ["name", "phone"],
                                                         "via": "status"})
        else:
            audit.record(session, actor=user_id, action="candidate.viewed", entity="candidate",
                         entity_id=cand.ref_code)
        return out


def require_find(ctx: AppContext, user_id: str) -> None:
    """`/prescreen find` in portal mode: only who may search is checked (the search itself
    happens on the secure page)."""
    with ctx.db.session() as session:
        require_somewhere(session, user_id, Action.FIND_CANDIDATE)


@dataclass
class FoundCandidate:
    ref: str
    status: str
    do_not_call: bool
    study_key: str = ""
    name: str | None = None  # PHI: only with `with_names`, for the secure page


def find_candidates(ctx: AppContext, user_id: str, query: str, *,
                    action: Action = Action.FIND_CANDIDATE, with_names: bool = False,
                    via: str | None = None) -> list[FoundCandidate]:
    """Candidates of the studies where the user may `action` whose phone (7+ digits in the query)
    or full name matches, through the blind indexes: nobody else is decrypted. `with_names`
    decrypts the names of the results (the secure page; `action` should then be VIEW_PHI), and the
    audit event says so. The audit keeps how and the result codes, never the query."""
    query = query.strip()
    if len(query) < 3:
        raise InvalidInput("Give a phone number or a full name, like `/prescreen find 617 555 0123`.")
    with ctx.db.session() as session:
        allowed = {s.id: s.key for s in require_somewhere(session, user_id, action)}
        studies = list(allowed)
        by = "name"
        phone_index = name_index = None
        digits = sum(ch.isdigit() for ch in query)
        if digits >= 7:
            by = "phone"
            try:
                phone_index = ctx.cipher.indexes(normalise_phone(query))
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        else:
            name_index = ctx.cipher.indexes(query)
        rows = cand_repo.search(session, studies, phone_index=phone_index, name_index=name_index)
        # the query itself is PHI: the audit trail keeps only how and how many
        after: dict[str, Any] = {"by": by, "results": [c.ref_code for c in rows]}
        if with_names:
            after["fields"] = ["name"]
        if via:
            after["via"] = via
        audit.record(session, actor=user_id, action="candidate.searched", entity="candidate",
                     entity_id="*", after=after)
        return [FoundCandidate(c.ref_code, c.status, c.do_not_call, allowed[c.study_id],
                               ctx.cipher.decrypt(c.name_enc) if with_names else None)
                for c in rows]


@dataclass
class QueueItem:
    ref: str
    study_key: str
    detail: str
    due_at: dt.datetime | None = None


@dataclass
class Queue:
    timezone: str
    callbacks_today: list[QueueItem] = field(default_factory=list)
    needs_attempt: list[QueueItem] = field(default_factory=list)
    approvals: list[QueueItem] = field(default_factory=list)
    is_member: bool = True
    work: Any = None  # bot.leads.queue.WorkQueue: everything the member owns, most urgent first


def my_queue(ctx: AppContext, user_id: str) -> Queue:
    now = ctx.clock.now()
    with ctx.db.session() as session:
        member = study_repo.get_member(session, user_id)
        if member is None:
            return Queue(timezone="UTC", is_member=False)
        tz = ZoneInfo(member.timezone)
        q = Queue(timezone=member.timezone)
        local_today = now.astimezone(tz).date()
        start = dt.datetime.combine(local_today, dt.time(0), tz).astimezone(dt.UTC)
        end = dt.datetime.combine(local_today + dt.timedelta(days=1), dt.time(0), tz).astimezone(dt.UTC)
        working = {s.id: s for s in studies_where(session, user_id, Action.WORK_QUEUE)}
        coord_studies = list(working)
        if coord_studies:
            q.work = work_for(session, member, working, now, limit=11)
        since = min(start, now - dt.timedelta(hours=12))
        for cb in cand_repo.callbacks_between(session, member.id, since, end):
            overdue = " · overdue" if cb.due_at < now else ""
            q.callbacks_today.append(QueueItem(
                cb.candidate.ref_code, cb.candidate.study.key,
                f"{cb.due_at.astimezone(tz):%H:%M} your time{overdue}", cb.due_at))
        for c in cand_repo.needing_attempt(session, member.id, coord_studies):
            q.needs_attempt.append(QueueItem(
                c.ref_code, c.study.key,
                f"{c.attempts}/{c.study.max_attempts} attempts · last: {label(c.last_outcome).lower()}"))
        approver_studies = [s.id for s in studies_where(session, user_id, Action.DECIDE_REFERRAL)]
        for r in ref_repo.pending(session, approver_studies, limit=20):
            waited = now - r.created_at
            hours = int(waited.total_seconds() // 3600)
            q.approvals.append(QueueItem(r.candidate.ref_code, r.candidate.study.key,
                                         f"{ref_states.label(r.state)} · waiting {hours} h"))
        return q


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " "))


@dataclass
class CandidateBrief:
    ref: str
    attempts: int
    last_outcome: str | None
    do_not_call: bool
    timezone: str


def brief(c: Candidate) -> CandidateBrief:
    return CandidateBrief(c.ref_code, c.attempts, c.last_outcome, c.do_not_call, c.timezone)


@dataclass
class LogModalSetup:
    studies: list[Study]  # the studies the user may log calls for, sites and questions loaded
    study_key: str | None
    candidate: CandidateBrief | None


def log_modal_setup(ctx: AppContext, user_id: str, target: str | None) -> LogModalSetup:
    """Which studies the modal offers, and the study/candidate to preselect."""
    with ctx.db.session() as session:
        target = (target or "").strip()
        named = study_repo.get_study(session, target) if target and not is_ref(target) else None
        if named is not None and named.active:
            require_role(session, user_id, named, Action.LOG_CALL)
        mine = require_somewhere(session, user_id, Action.LOG_CALL)
        keys = {s.key for s in mine}
        if target and is_ref(target):
            cand = cand_repo.by_ref(session, target)
            if cand is None:
                raise UnknownCandidate(f"No candidate {bk.echo_ref(target)}. Check the code, or type "
                                       "`/prescreen` to log a new candidate.")
            require_role(session, user_id, cand.study, Action.LOG_CALL)
            return LogModalSetup(mine, cand.study.key, brief(cand))
        if target:
            key = target.upper()
            if key not in keys:
                raise UnknownStudy(f"There is no study {bk.code_word(target, 'by that name')}. Your studies: "
                                   f"{', '.join(sorted(keys))}.")
            return LogModalSetup(mine, key, None)
        return LogModalSetup(mine, mine[0].key if len(mine) == 1 else None, None)


def log_modal_for_study(ctx: AppContext, user_id: str, study_key: str | None,
                        ref: str | None) -> LogModalSetup:
    """Re-render data for a modal update (study switched, candidate mode switched)."""
    setup = log_modal_setup(ctx, user_id, ref or None)
    if ref:
        return setup
    keys = {s.key for s in setup.studies}
    return LogModalSetup(setup.studies, study_key if study_key in keys else None, None)
