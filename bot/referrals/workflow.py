"""Referral use cases: open a referral for a pre-qualified candidate, decide it, move it along.

Every change writes a ReferralEvent, an AuditEvent and its Slack announcements (thread reply,
card update, DMs, site hand-off) as outbox rows in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot import outbox
from bot.access import (
    ADMIN,
    APPROVER,
    Action,
    require_decider,
    require_independent,
    require_role,
    require_second_person,
)
from bot.calendar.workflow import site_free_slots
from bot.context import AppContext
from bot.errors import AlreadyDecided, DomainError, InvalidInput, UnknownCandidate
from bot.referrals import states
from bot.referrals import views as rv
from bot.referrals.reasons import reason_label, reject_reasons
from bot.secure_links import sign_url
from bot.studies.lookup import study_or_error
from storage import audit
from storage.models import (
    Candidate,
    PrescreenCall,
    Referral,
    ReferralDecision,
    ReferralEvent,
    Site,
    Study,
)
from storage.repositories import approvals as approvals_repo
from storage.repositories import candidates as cand_repo
from storage.repositories import referrals as repo
from storage.repositories import studies as study_repo

BOT_ACTOR = "prescreen-bot"
log = logging.getLogger("prescreen.referrals")


@dataclass
class TransitionResult:
    ref: str
    from_state: str
    to_state: str
    message: str


def _card_key(referral_id: int) -> str:
    return f"referral:{referral_id}:card"


def card_data(session: Session, referral: Referral,
              deciders: list[str] | None = None) -> rv.CardData:
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
        last_at=last.at if last else None, decisions=decision_lines(session, referral),
        approvals_needed=max(1, study.approvals_needed or 1), deciders=deciders or [],
        signature_required=bool(study.approval_signature),
    )


def decision_lines(session: Session, referral: Referral) -> list[rv.DecisionLine]:
    """Each decision on the referral with its signature; a referral decided before decisions were
    kept shows the one it has (decided_by/decided_at)."""
    study = referral.candidate.study
    rows = approvals_repo.decisions_of(session, referral.id)
    sigs = approvals_repo.signatures_of(session, referral.id)
    lines = [rv.DecisionLine(decision=r.decision, actor=r.actor, at=r.at,
                             on_behalf_of=r.on_behalf_of,
                             reason=reason_label(study, r.reason) if r.decision == "reject" else None,
                             step=r.step, needed=r.needed,
                             signed_name=sigs[r.id].printed_name if r.id in sigs else None,
                             meaning=sigs[r.id].meaning if r.id in sigs else None)
             for r in rows]
    if not lines and referral.decided_by and referral.decided_at and referral.decided_by != BOT_ACTOR:
        rejected = referral.state == "rejected"
        lines.append(rv.DecisionLine(decision="reject" if rejected else "approve",
                                     actor=referral.decided_by, at=referral.decided_at,
                                     reason=reason_label(study, referral.reason) if rejected else None))
    return lines


def _announce(ctx: AppContext, session: Session, referral: Referral, event: ReferralEvent,
              extra: str | None = None) -> None:
    """Thread reply under the card + the card itself updated in place."""
    study = referral.candidate.study
    key = _card_key(referral.id)
    reason = reason_label(study, referral.reason) if event.to_state == "rejected" else None
    outbox.post(ctx, session, key=f"referral:{referral.id}:event:{event.id}", kind="referral_event",
                channel=study.channel_id, study_key=study.key, thread_of=key,
                text=rv.transition_text(referral.candidate.ref_code, event.from_state,
                                        event.to_state, event.actor, reason,
                                        referral.visit_date if event.to_state == "visit_scheduled"
                                        else None, extra))
    _update_card(ctx, session, referral)


def _update_card(ctx: AppContext, session: Session, referral: Referral) -> None:
    study = referral.candidate.study
    key = _card_key(referral.id)
    data = card_data(session, referral, who_decides(ctx, session, referral, ctx.clock.now())
                     if referral.state == "pending_approval" else None)
    outbox.update(ctx, session, key=f"{key}:v{referral.version}", of=key, kind="referral_card",
                  channel=study.channel_id, study_key=study.key, text=rv.card_text(data),
                  blocks=rv.card_blocks(data))


def _event(session: Session, referral: Referral, from_state: str | None, to_state: str, actor: str,
           at: dt.datetime, reason: str | None = None,
           details: dict[str, object] | None = None) -> ReferralEvent:
    ev = repo.add_event(session, referral_id=referral.id, from_state=from_state, to_state=to_state,
                        actor=actor, at=at, reason=reason)
    audit.record(session, actor=actor, action=f"referral.{to_state}", entity="referral",
                 entity_id=referral.id, before={"state": from_state} if from_state else None,
                 after={"state": to_state, "candidate": referral.candidate.ref_code,
                        "version": referral.version, **(details or {})}, reason=reason)
    return ev


def open_referral(ctx: AppContext, session: Session, *, study: Study, candidate: Candidate,
                  call: PrescreenCall, site: Site | None, actor: str, passed: list[str]) -> Referral:
    now = ctx.clock.now()
    referral = repo.create(session, candidate_id=candidate.id, study_id=study.id,
                           site_id=site.id if site else None, call_id=call.id,
                           state="pending_approval", version=1,
                           created_by_id=call.coordinator_id, created_at=now, updated_at=now)
    _event(session, referral, None, "pending_approval", actor, now)
    approvals_repo.set_public_id(session, referral.id, secrets.token_urlsafe(12))
    session.refresh(referral)
    data = card_data(session, referral, who_decides(ctx, session, referral, now)
                     if study.approval_required else None)
    outbox.post(ctx, session, key=_card_key(referral.id), kind="referral_card",
                channel=study.channel_id, study_key=study.key, text=rv.card_text(data),
                blocks=rv.card_blocks(data))
    if not study.approval_required:
        _apply(ctx, session, referral, "approved", BOT_ACTOR, now, reason="no approval step")
        _hand_off(ctx, session, referral, now)
    return referral


def _apply(ctx: AppContext, session: Session, referral: Referral, to_state: str, actor: str,
           now: dt.datetime, *, reason: str | None = None, visit_date: dt.date | None = None,
           expected_version: int | None = None, details: dict[str, object] | None = None,
           extra: str | None = None) -> ReferralEvent:
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
        raise _already(referral, session)
    session.refresh(referral)
    ev = _event(session, referral, from_state, to_state, actor, now,
                reason=reason, details=details)
    _announce(ctx, session, referral, ev, extra)
    return ev


def _already(referral: Referral, session: Session | None = None) -> AlreadyDecided:
    study_tz = ZoneInfo(referral.candidate.study.timezone)
    if referral.state == "pending_approval" and session is not None:
        given = [d for d in approvals_repo.decisions_of(session, referral.id)
                 if d.decision == "approve"]
        if given:
            who = ", ".join(f"<@{d.actor}>" for d in given)
            needed = max(1, referral.candidate.study.approvals_needed or 1)
            return AlreadyDecided(f"{referral.candidate.ref_code} changed meanwhile: {who} gave "
                                  f"{len(given)} of {needed} approvals. Nothing changed; decide "
                                  "again on the updated card.")
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


SIGN_FRESH = dt.timedelta(minutes=5)  # a signature rests on a sign-in this recent
DEFAULT_MEANING = "Approved for referral as PI delegate"


class SignatureNeeded(DomainError):
    """The study signs its decisions: nothing is decided until the approver signs at `url`."""

    def __init__(self, message: str, url: str, ref: str, approve: bool) -> None:
        super().__init__(message)
        self.url = url
        self.ref = ref
        self.approve = approve


class StaleSignature(DomainError):
    """The referral changed since the approver clicked: the signature is refused."""


@dataclass(frozen=True)
class Signature:
    """What the secure page vouches for: a fresh Sign in with Slack and the printed name."""

    printed_name: str
    authenticated_at: dt.datetime


def meaning_of(study: Study, approve: bool) -> str:
    """What a signature means: the study's `signature_meaning` (for an approval; a rejection reads
    "Rejected …" instead of "Approved …"), or "Approved for referral as PI delegate"."""
    wording = (study.signature_meaning or DEFAULT_MEANING).strip()
    if approve:
        return wording
    if wording.lower().startswith("approved"):
        return "Rejected" + wording[len("approved"):]
    return f"Rejected: {wording}"


def involved_in(session: Session, referral: Referral) -> set[str]:
    """Who may not approve the referral: whoever logged the qualifying call, its coordinator
    (who opened it) and the candidate's owner."""
    out: set[str] = set()
    call = repo.call_of(session, referral)
    if call is not None and call.coordinator is not None:
        out.add(call.coordinator.slack_user_id)
    creator = repo.creator_of(session, referral)
    if creator is not None:
        out.add(creator.slack_user_id)
    owner = referral.candidate.owner
    if owner is not None:
        out.add(owner.slack_user_id)
    return out


def _approvers(session: Session, study: Study) -> list[str]:
    ids_ = [m.slack_user_id for m in study_repo.members_with_role(session, study.id, APPROVER)]
    return ids_ or [m.slack_user_id for m in study_repo.members_with_role(session, study.id, ADMIN)]


def who_decides(ctx: AppContext, session: Session, referral: Referral, now: dt.datetime
                ) -> list[str]:
    """Whom the card names: the study's approvers (admins when it has none) who may approve this
    referral and have not approved it yet; one who is out of office now (Outlook, when Graph is
    configured) is replaced by their delegates in force."""
    study = referral.candidate.study
    involved = involved_in(session, referral)
    done = {d.actor for d in approvals_repo.decisions_of(session, referral.id)} | {
        d.on_behalf_of for d in approvals_repo.decisions_of(session, referral.id) if d.on_behalf_of}
    candidates = [u for u in _approvers(session, study) if u not in involved and u not in done]
    away = out_of_office(ctx, session, candidates, now)
    names: list[str] = []
    for uid in candidates:
        if uid not in away:
            names.append(uid)
            continue
        for d in approvals_repo.delegates_of(session, study.id, uid, now):
            if d.delegate not in involved and d.delegate not in names:
                names.append(d.delegate)
    return names


def out_of_office(ctx: AppContext, session: Session, user_ids: list[str], now: dt.datetime
                  ) -> set[str]:
    """The users whose Outlook calendar says out of office now (getSchedule, status "oof").
    Without Graph, or when Graph cannot answer, nobody is taken as away."""
    if ctx.graph is None or not user_ids:
        return set()
    mailboxes: dict[str, str] = {}
    for uid in user_ids:
        member = study_repo.get_member(session, uid)
        if member is not None and member.mailbox:
            mailboxes[member.mailbox.lower()] = uid
    if not mailboxes:
        return set()
    try:
        found = ctx.graph.get_schedule(list(mailboxes), now, now + dt.timedelta(minutes=30),
                                       interval_minutes=30)
    except Exception as exc:  # Graph down must not stop a decision: name everyone
        log.warning("out-of-office check skipped: %s", type(exc).__name__)
        return set()
    away = set()
    for mailbox, info in found.items():
        if info.error is None and info.availability_view[:1] == "3":  # 3 = oof
            away.add(mailboxes[mailbox.lower()])
    return away


@dataclass
class _Decider:
    role: str
    on_behalf_of: str | None
    earlier: list[ReferralDecision]


def _check_decider(ctx: AppContext, session: Session, referral: Referral, actor: str,
                   approve: bool, now: dt.datetime) -> _Decider:
    """May `actor` decide this referral now, and in whose place: role or delegation, the
    separation of duties for an approval, and the two-person rule."""
    study = referral.candidate.study
    role, on_behalf_of = require_decider(session, actor, study, now)
    earlier = [d for d in approvals_repo.decisions_of(session, referral.id) if d.decision == "approve"]
    if approve and referral.state == "pending_approval":
        ref = referral.candidate.ref_code
        involved = involved_in(session, referral)
        if actor in involved or (on_behalf_of and on_behalf_of in involved):
            who_can = [u for u in who_decides(ctx, session, referral, now) if u != actor]
            require_independent(actor, on_behalf_of, involved, ref, who_can)
        require_second_person(actor, on_behalf_of, [(d.actor, d.on_behalf_of) for d in earlier],
                              ref, max(1, study.approvals_needed or 1))
    return _Decider(role, on_behalf_of, earlier)


def _validate_reason(study: Study, approve: bool, reason: str | None) -> None:
    if not approve and not reason:
        raise InvalidInput("Choose a reason for the rejection.", field="reason")
    if not approve and reason not in reject_reasons(study):
        raise InvalidInput(f"Choose one of the {study.key} reasons in the list; add anything "
                           "else in the note.", field="reason")


def _public_id(session: Session, referral: Referral) -> str:
    if not referral.public_id:
        approvals_repo.set_public_id(session, referral.id, secrets.token_urlsafe(12))
        session.refresh(referral)
    assert referral.public_id is not None
    return referral.public_id


def decide(ctx: AppContext, *, referral_id: int, actor: str, approve: bool,
           expected_version: int | None, reason: str | None = None,
           note: str | None = None, signature: Signature | None = None) -> TransitionResult:
    """Approve or reject a pending referral. On a study with signed decisions, without a
    `signature` this raises SignatureNeeded (with the page to sign on) and changes nothing."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        referral = _load(session, referral_id)
        who = _check_decider(ctx, session, referral, actor, approve, now)
        if referral.state != "pending_approval":
            raise _already(referral, session)
        study = referral.candidate.study
        _validate_reason(study, approve, reason)
        version = referral.version if expected_version is None else expected_version
        ref = referral.candidate.ref_code
        if signature is not None and version != referral.version:
            raise StaleSignature(f"{ref} changed since you clicked: it is now "
                                 f"{states.label(referral.state)} (version {referral.version}). "
                                 "Nothing was signed. Go back to the card in Slack and decide "
                                 "again.")
        if version != referral.version:  # someone decided since this button was drawn
            raise _already(referral, session)
        if study.approval_signature and signature is None:
            url = sign_url(ctx.settings, _public_id(session, referral),
                           "approve" if approve else "reject", version,
                           None if approve else reason)
            session.commit()
            raise SignatureNeeded(rv.sign_text(ref, approve), url, ref, approve)
        if signature is not None and now - signature.authenticated_at > SIGN_FRESH:
            raise StaleSignature("Your sign-in is more than 5 minutes old. Sign in again to sign.")
        return _record_decision(ctx, session, referral, actor, approve, version, reason, note,
                                signature, who, now)


def _record_decision(ctx: AppContext, session: Session, referral: Referral, actor: str,
                     approve: bool, version: int, reason: str | None, note: str | None,
                     signature: Signature | None, who: _Decider, now: dt.datetime
                     ) -> TransitionResult:
    study = referral.candidate.study
    ref = referral.candidate.ref_code
    needed = max(1, study.approvals_needed or 1) if approve else 1
    step = len(who.earlier) + 1 if approve else 1
    decision = approvals_repo.add_decision(
        session, referral_id=referral.id, decision="approve" if approve else "reject",
        actor=actor, on_behalf_of=who.on_behalf_of, role=who.role,
        reason=None if approve else reason, step=step, needed=max(needed, step),
        referral_version=version, at=now)
    details: dict[str, object] = {
        "decision_id": decision.id, "role": who.role, "on_behalf_of": who.on_behalf_of,
        "approval": f"{step} of {needed}" if approve else None,
        "not_involved": sorted(involved_in(session, referral)),
    }
    extra_bits = [f"for <@{who.on_behalf_of}>"] if who.on_behalf_of else []
    if signature is not None:
        meaning = meaning_of(study, approve)
        sig = approvals_repo.add_signature(
            session, decision_id=decision.id, referral_id=referral.id, referral_version=version,
            decision=decision.decision, signer=actor, printed_name=signature.printed_name[:200],
            meaning=meaning, signed_at=now, authenticated_at=signature.authenticated_at)
        details["signature"] = {"id": sig.id, "signer": actor, "printed_name": sig.printed_name,
                                "meaning": meaning, "signed_at": now.isoformat(),
                                "referral_version": version}
        extra_bits.append(f"signed by {bk.escape(sig.printed_name)} as “{bk.escape(meaning)}”")
    if approve and step < needed:
        if not repo.compare_and_set(session, referral.id, version, updated_at=now):
            session.rollback()
            referral = _load(session, referral.id, for_update=False)
            raise _already(referral, session)
        session.refresh(referral)
        audit.record(session, actor=actor, action="referral.approval_recorded", entity="referral",
                     entity_id=referral.id, before={"state": referral.state},
                     after={"state": referral.state, "candidate": ref,
                            "version": referral.version, **details})
        lines = decision_lines(session, referral)
        outbox.post(ctx, session, key=f"referral:{referral.id}:approval:{decision.id}",
                    kind="referral_event", channel=study.channel_id, study_key=study.key,
                    thread_of=_card_key(referral.id),
                    text=rv.approval_recorded_text(ref, lines[-1], study.timezone))
        _update_card(ctx, session, referral)
        return TransitionResult(ref, "pending_approval", "pending_approval",
                                f"{ref}: approval {step} of {needed} recorded. A different "
                                "approver gives the next approval.")
    target = "approved" if approve else "rejected"
    try:
        ev = _apply(ctx, session, referral, target, actor, now, reason=reason,
                    expected_version=version, details=details, extra=" · ".join(extra_bits) or None)
    except AlreadyDecided:  # lost the race: say what the winner did, without our own row
        session.rollback()
        referral = _load(session, referral.id, for_update=False)
        raise _already(referral, session) from None
    decision.event_id = ev.id
    if note and not ctx.settings.portal:  # portal: notes go on the contact card only
        referral.reason_note_enc = ctx.cipher.encrypt(note.strip()[:500])
    data = card_data(session, referral)
    if data.coordinator:
        verb = "approved" if approve else "rejected"
        extra = f" · {bk.escape(data.reason)}" if data.reason and not approve else ""
        for_whom = f" for <@{who.on_behalf_of}>" if who.on_behalf_of else ""
        outbox.post(ctx, session, key=f"referral:{referral.id}:dm:{target}", kind="decision_dm",
                    channel=data.coordinator, study_key=data.study_key,
                    text=f"{states.EMOJI[target]} {data.ref} was {verb} by <@{actor}>{for_whom}{extra}.")
    if approve:
        _hand_off(ctx, session, referral, now)
    return TransitionResult(data.ref, "pending_approval", referral.state,
                            f"{data.ref} {states.label(target)}.")


@dataclass
class SignPage:
    """What the signature page shows before the approver confirms."""

    public_id: str
    ref: str
    study_key: str
    study_title: str
    site: str | None
    approve: bool
    reason: str | None  # the reason code (a rejection)
    reason_label: str | None
    meaning: str
    version: int
    on_behalf_of: str | None
    approval: str | None  # "1 of 2" on a two-approver study


def signing(ctx: AppContext, *, public_id: str, actor: str, decision: str, version: int,
            reason: str | None) -> SignPage:
    """Before the signature: the referral (by its opaque id), may this person decide it, is the
    version they clicked still current. StaleSignature otherwise."""
    if decision not in ("approve", "reject"):
        raise InvalidInput("This signature link is damaged. Press Approve or Reject on the card "
                           "again.")
    approve = decision == "approve"
    now = ctx.clock.now()
    with ctx.db.session() as session:
        referral = approvals_repo.by_public_id(session, public_id)
        if referral is None:
            raise UnknownCandidate("There is no referral at this address. Open it again from the "
                                   "card in Slack.")
        who = _check_decider(ctx, session, referral, actor, approve, now)
        study = referral.candidate.study
        ref = referral.candidate.ref_code
        if referral.state != "pending_approval" or referral.version != version:
            raise StaleSignature(f"{ref} changed since you clicked: it is now "
                                 f"{states.label(referral.state)}. Nothing was signed. Go back "
                                 "to the card in Slack and decide again.")
        _validate_reason(study, approve, reason)
        needed = max(1, study.approvals_needed or 1)
        return SignPage(public_id=public_id, ref=ref, study_key=study.key,
                        study_title=study.title,
                        site=f"{referral.site.key} · {referral.site.name}" if referral.site else None,
                        approve=approve, reason=None if approve else reason,
                        reason_label=None if approve else reason_label(study, reason),
                        meaning=meaning_of(study, approve), version=version,
                        on_behalf_of=who.on_behalf_of,
                        approval=f"{len(who.earlier) + 1} of {needed}"
                        if approve and needed > 1 else None)


@dataclass
class Signed:
    result: TransitionResult
    meaning: str


def sign_decision(ctx: AppContext, *, public_id: str, actor: str, decision: str, version: int,
                  reason: str | None, typed_name: str, signature: Signature) -> Signed:
    """The approver confirmed on the secure page: check the printed name, then decide."""
    page = signing(ctx, public_id=public_id, actor=actor, decision=decision, version=version,
                   reason=reason)
    if " ".join(typed_name.split()).casefold() != " ".join(signature.printed_name.split()).casefold():
        raise InvalidInput(f"Type your name exactly as shown ({signature.printed_name}) to sign.",
                           field="printed_name")
    with ctx.db.session() as session:
        referral = approvals_repo.by_public_id(session, public_id)
        assert referral is not None
        referral_id = referral.id
    try:
        result = decide(ctx, referral_id=referral_id, actor=actor, approve=page.approve,
                        expected_version=version, reason=page.reason, signature=signature)
    except AlreadyDecided as exc:  # someone else decided between the page and the click
        raise StaleSignature(f"{exc.message} Nothing was signed.") from None
    return Signed(result, page.meaning)


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
        if to_state not in ("approved", "rejected"):
            _require(session, actor, referral, Action.ADVANCE_REFERRAL)
    if to_state in ("approved", "rejected"):  # a decision by command: the same rules as the card
        return decide(ctx, referral_id=referral_id, actor=actor, approve=to_state == "approved",
                      expected_version=expected_version)
    with ctx.db.session() as session:
        referral = _load(session, referral_id)
        if to_state == "visit_scheduled" and visit_date is None:
            raise InvalidInput(f"Give the visit date: `/prescreen referral {referral.candidate.ref_code} "
                               "visit_scheduled 2026-12-03`.")
        from_state = referral.state
        if from_state == to_state:
            raise _already(referral, session)
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
        _check_decider(ctx, session, referral, actor, False, ctx.clock.now())
        if referral.state != "pending_approval":
            raise _already(referral, session)
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
