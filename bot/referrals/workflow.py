"""Referral use cases: open a referral for a pre-qualified candidate, decide it, move it along.

Every change writes a ReferralEvent, an AuditEvent and its Slack announcements (thread reply,
card update, DMs, site hand-off) as outbox rows in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot import outbox
from bot.access import Action, require_role
from bot.calendar.workflow import site_free_slots
from bot.context import AppContext
from bot.errors import AlreadyDecided, InvalidInput, UnknownCandidate
from bot.referrals import states
from bot.referrals import views as rv
from bot.referrals.reasons import reason_label, reject_reasons
from bot.studies.lookup import study_or_error
from storage import audit
from storage.models import Candidate, PrescreenCall, Referral, ReferralEvent, Site, Study
from storage.repositories import candidates as cand_repo
from storage.repositories import referrals as repo

BOT_ACTOR = "prescreen-bot"


@dataclass
class TransitionResult:
    ref: str
    from_state: str
    to_state: str
    message: str


def _card_key(referral_id: int) -> str:
    return f"referral:{referral_id}:card"


def card_data(session: Session, referral: Referral) -> rv.CardData:
    cand = referral.candidate
    study = cand.study
    call = repo.call_of(session, referral)
    coordinator = repo.creator_of(session, referral)
    last = repo.last_event(session, referral.id)
    passed = []
    if call is not None and call.answers:
        passed = [qid for qid in call.answers if qid not in (call.failed_criteria or [])]
    return rv.CardData(
        referral_id=referral.id, ref=cand.ref_code, study_key=study.key, study_title=study.title,
        study_tz=study.timezone,
        site=f"{referral.site.key} · {referral.site.name}" if referral.site else None,
        passed=passed, coordinator=coordinator.slack_user_id if coordinator else None,
        attempts=cand.attempts, state=referral.state, version=referral.version,
        decided_by=referral.decided_by, decided_at=referral.decided_at,
        reason=reason_label(study, referral.reason),
        visit_date=referral.visit_date, last_actor=last.actor if last else None,
        last_at=last.at if last else None,
    )


def _announce(ctx: AppContext, session: Session, referral: Referral, event: ReferralEvent) -> None:
    """Thread reply under the card + the card itself updated in place."""
    study = referral.candidate.study
    data = card_data(session, referral)
    key = _card_key(referral.id)
    reason = reason_label(study, referral.reason) if event.to_state == "rejected" else None
    outbox.post(ctx, session, key=f"referral:{referral.id}:event:{event.id}", kind="referral_event",
                channel=study.channel_id, study_key=study.key, thread_of=key,
                text=rv.transition_text(data.ref, event.from_state, event.to_state, event.actor,
                                        reason, referral.visit_date if event.to_state == "visit_scheduled"
                                        else None))
    outbox.update(ctx, session, key=f"{key}:v{referral.version}", of=key, kind="referral_card",
                  channel=study.channel_id, study_key=study.key, text=rv.card_text(data),
                  blocks=rv.card_blocks(data))


def _event(session: Session, referral: Referral, from_state: str | None, to_state: str, actor: str,
           at: dt.datetime, reason: str | None = None) -> ReferralEvent:
    ev = repo.add_event(session, referral_id=referral.id, from_state=from_state, to_state=to_state,
                        actor=actor, at=at, reason=reason)
    audit.record(session, actor=actor, action=f"referral.{to_state}", entity="referral",
                 entity_id=referral.id, before={"state": from_state} if from_state else None,
                 after={"state": to_state, "candidate": referral.candidate.ref_code,
                        "version": referral.version}, reason=reason)
    return ev


def open_referral(ctx: AppContext, session: Session, *, study: Study, candidate: Candidate,
                  call: PrescreenCall, site: Site | None, actor: str, passed: list[str]) -> Referral:
    now = ctx.clock.now()
    referral = repo.create(session, candidate_id=candidate.id, study_id=study.id,
                           site_id=site.id if site else None, call_id=call.id,
                           state="pending_approval", version=1,
                           created_by_id=call.coordinator_id, created_at=now, updated_at=now)
    _event(session, referral, None, "pending_approval", actor, now)
    data = card_data(session, referral)
    outbox.post(ctx, session, key=_card_key(referral.id), kind="referral_card",
                channel=study.channel_id, study_key=study.key, text=rv.card_text(data),
                blocks=rv.card_blocks(data))
    if not study.approval_required:
        _apply(ctx, session, referral, "approved", BOT_ACTOR, now, reason="no approval step")
        _hand_off(ctx, session, referral, now)
    return referral


def _apply(ctx: AppContext, session: Session, referral: Referral, to_state: str, actor: str,
           now: dt.datetime, *, reason: str | None = None, visit_date: dt.date | None = None,
           expected_version: int | None = None) -> ReferralEvent:
    """Compare-and-set the state; raise AlreadyDecided when someone else got there first."""
    from_state = referral.state
    states.check(referral.candidate.ref_code, from_state, to_state)
    version = referral.version if expected_version is None else expected_version
    values: dict[str, object] = {"state": to_state, "updated_at": now}
    if to_state in ("approved", "rejected"):
        values.update(decided_by=actor, decided_at=now, reason=reason)
    if visit_date is not None:
        values["visit_date"] = visit_date
    if not repo.compare_and_set(session, referral.id, version, **values):
        session.refresh(referral)
        raise _already(referral)
    session.refresh(referral)
    ev = _event(session, referral, from_state, to_state, actor, now,
                reason=reason)
    _announce(ctx, session, referral, ev)
    return ev


def _already(referral: Referral) -> AlreadyDecided:
    study_tz = ZoneInfo(referral.candidate.study.timezone)
    if referral.decided_by and referral.decided_at and referral.state in ("approved", "rejected",
                                                                          "sent_to_site"):
        at = referral.decided_at.astimezone(study_tz)
        verb = "approved" if referral.state != "rejected" else "rejected"
        return AlreadyDecided(f"{referral.candidate.ref_code} was already {verb} by "
                              f"<@{referral.decided_by}> at {at:%H:%M %Z}. Nothing changed.")
    return AlreadyDecided(f"{referral.candidate.ref_code} changed meanwhile: it is now "
                          f"{states.label(referral.state)}. Nothing changed.")


def _hand_off(ctx: AppContext, session: Session, referral: Referral, now: dt.datetime) -> None:
    """On approval: tell the site what to do, and move to sent_to_site."""
    site = referral.site
    study = referral.candidate.study
    data = card_data(session, referral)
    if site is not None:
        target = site.channel_id or site.liaison_slack_id
        if target:
            outbox.post(ctx, session, key=f"referral:{referral.id}:site", kind="site_handoff",
                        channel=target, study_key=study.key,
                        text=rv.site_handoff_text(data.ref, site.name, study.key, data.coordinator))
    _apply(ctx, session, referral, "sent_to_site", BOT_ACTOR, now,
           reason=None if site and (site.channel_id or site.liaison_slack_id)
           else "site has no Slack channel; hand off by your usual route")


def _load(session: Session, referral_id: int, for_update: bool = True) -> Referral:
    referral = repo.load(session, referral_id, for_update=for_update)
    if referral is None:
        raise UnknownCandidate("That referral no longer exists.")
    return referral


def _require(session: Session, user_id: str, referral: Referral, action: Action) -> None:
    require_role(session, user_id, referral.candidate.study, action)


def decide(ctx: AppContext, *, referral_id: int, actor: str, approve: bool,
           expected_version: int | None, reason: str | None = None,
           note: str | None = None) -> TransitionResult:
    now = ctx.clock.now()
    with ctx.db.session() as session:
        referral = _load(session, referral_id)
        _require(session, actor, referral, Action.DECIDE_REFERRAL)
        if referral.state != "pending_approval":
            raise _already(referral)
        if not approve and not reason:
            raise InvalidInput("Choose a reason for the rejection.", field="reason")
        study = referral.candidate.study
        if not approve and reason not in reject_reasons(study):
            raise InvalidInput(f"Choose one of the {study.key} reasons in the list; add anything "
                               "else in the note.", field="reason")
        from_state = referral.state
        target = "approved" if approve else "rejected"
        _apply(ctx, session, referral, target, actor, now, reason=reason,
               expected_version=expected_version)
        if note and not ctx.settings.portal:  # portal: notes go on the contact card only
            referral.reason_note_enc = ctx.cipher.encrypt(note.strip()[:500])
        data = card_data(session, referral)
        if data.coordinator:
            verb = "approved" if approve else "rejected"
            extra = f" · {bk.escape(data.reason)}" if data.reason and not approve else ""
            outbox.post(ctx, session, key=f"referral:{referral.id}:dm:{target}", kind="decision_dm",
                        channel=data.coordinator, study_key=data.study_key,
                        text=f"{states.EMOJI[target]} {data.ref} was {verb} by <@{actor}>{extra}.")
        if approve:
            _hand_off(ctx, session, referral, now)
        return TransitionResult(data.ref, from_state, referral.state,
                                f"{data.ref} {states.label(target)}.")


def advance(ctx: AppContext, *, actor: str, to_state: str, referral_id: int | None = None,
            ref: str | None = None, expected_version: int | None = None,
            visit_date: dt.date | None = None) -> TransitionResult:
    """Move an open referral to its next state (`/prescreen referral REF STATE [DATE]` or a button)."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        if referral_id is None:
            cand = cand_repo.by_ref(session, ref or "")
            if cand is None:
                raise UnknownCandidate(f"No candidate {bk.echo_ref(ref or '')}. Codes look like "
                                      "ALZ-0042.")
            latest = cand_repo.latest_referral(session, cand.id)
            if latest is None:
                raise UnknownCandidate(f"{cand.ref_code} has no referral yet: log a pre-qualified "
                                       "call first.")
            referral_id = latest.id
        referral = _load(session, referral_id)
        if to_state in ("approved", "rejected"):
            _require(session, actor, referral, Action.DECIDE_REFERRAL)
        else:
            _require(session, actor, referral, Action.ADVANCE_REFERRAL)
        if to_state == "visit_scheduled" and visit_date is None:
            raise InvalidInput(f"Give the visit date: `/prescreen referral {referral.candidate.ref_code} "
                               "visit_scheduled 2026-12-03`.")
        from_state = referral.state
        if from_state == to_state:
            raise _already(referral)
        _apply(ctx, session, referral, to_state, actor, now, visit_date=visit_date,
               expected_version=expected_version)
        if to_state == "approved":
            _hand_off(ctx, session, referral, now)
        elif to_state in ("withdrawn", "lost", "screen_failed", "enrolled"):
            data = card_data(session, referral)
            if data.coordinator and data.coordinator != actor:
                outbox.post(ctx, session, key=f"referral:{referral.id}:dm:{to_state}",
                            kind="referral_dm", channel=data.coordinator, study_key=data.study_key,
                            text=f"{states.EMOJI[to_state]} {data.ref} is now {states.label(to_state)} "
                                 f"(<@{actor}>).")
        ref_code = referral.candidate.ref_code
        return TransitionResult(ref_code, from_state, referral.state,
                                f"{ref_code}: {states.label(from_state)} → {states.label(referral.state)}.")


@dataclass
class ReferralList:
    study_key: str
    counts: dict[str, int]
    rows: list[tuple[str, str, str | None]]
    state: str | None


def list_referrals(ctx: AppContext, *, actor: str, study_key: str, state: str | None) -> ReferralList:
    if state and state not in states.ALL_STATES:
        raise InvalidInput(f"{bk.code(state)} is not a referral state. "
                           f"States: {', '.join(states.ALL_STATES)}.")
    with ctx.db.session() as session:
        study = study_or_error(session, study_key, actor)
        require_role(session, actor, study, Action.VIEW_REFERRALS)
        rows = [(r.candidate.ref_code, r.state, r.site.key if r.site else None)
                for r in repo.list_for_study(session, study.id, state)]
        return ReferralList(study.key, repo.counts_by_state(session, study.id), rows, state)


@dataclass
class RejectChoice:
    ref: str
    reasons: dict[str, str]  # the study's reject reasons, code → label


def check_can_decide(ctx: AppContext, *, referral_id: int, actor: str) -> RejectChoice:
    """Before opening the reject modal: may this user decide, is it still undecided, and the
    study's list of reasons."""
    with ctx.db.session() as session:
        referral = _load(session, referral_id, for_update=False)
        _require(session, actor, referral, Action.DECIDE_REFERRAL)
        if referral.state != "pending_approval":
            raise _already(referral)
        return RejectChoice(referral.candidate.ref_code, reject_reasons(referral.candidate.study))


@dataclass
class VisitChoice:
    referral_id: int
    version: int
    ref: str
    site_timezone: str
    slots: object  # bot.calendar.workflow.SiteSlots | None


def visit_choices(ctx: AppContext, *, referral_id: int, actor: str) -> VisitChoice:
    """Before the "visit scheduled" form: may this user, is it the next step, and the site's
    free slots for the next 10 business days (from the calendar cache, never Graph itself)."""
    with ctx.db.session() as session:
        referral = _load(session, referral_id, for_update=False)
        _require(session, actor, referral, Action.ADVANCE_REFERRAL)
        states.check(referral.candidate.ref_code, referral.state, "visit_scheduled")
        site = referral.site
        tz = site.timezone if site else referral.candidate.study.timezone
        slots = site_free_slots(ctx, site, ctx.clock.now()) if site is not None else None
        return VisitChoice(referral.id, referral.version, referral.candidate.ref_code, tz, slots)


def visit_date_from(ctx: AppContext, *, referral_id: int, slot: str | None,
                    day: str | None) -> dt.date:
    """The visit day from a picked free slot (UTC ISO start, read in the site's time zone) or a date."""
    if slot:
        with ctx.db.session() as session:
            referral = _load(session, referral_id, for_update=False)
            tz = referral.site.timezone if referral.site else referral.candidate.study.timezone
        try:
            start = dt.datetime.strptime(slot, "%Y-%m-%dT%H:%MZ").replace(tzinfo=dt.UTC)
        except ValueError:
            raise InvalidInput("Pick a slot from the list, or a date.", field="slot") from None
        return start.astimezone(ZoneInfo(tz)).date()
    if day:
        try:
            visit = dt.date.fromisoformat(day)
        except ValueError:
            raise InvalidInput("Pick a date.", field="date") from None
        if visit < ctx.clock.now().date() - dt.timedelta(days=1):
            raise InvalidInput("That date has passed. Pick the day of the visit.", field="date")
        return visit
    raise InvalidInput("Pick a free slot or a date for the visit.", field="date")
