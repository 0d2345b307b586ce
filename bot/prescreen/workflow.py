"""Log a pre-screen call: validate, store the candidate and the call, start what follows.

Field errors are keyed by form field name ("phone", "answer:age", "callback_date"…); the view
module maps them to Slack block ids. Nothing here knows about Slack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from bot import regions
from bot.access import Action, require_role
from bot.calendar.views import collision_warning
from bot.calendar.workflow import callback_collision
from bot.callbacks import cadence
from bot.callbacks.service import cancel_open_callbacks, on_call_logged, schedule_callback
from bot.callbacks.windows import window_problem
from bot.candidate_fields import MAX_NAME, age_on
from bot.context import AppContext
from bot.errors import DomainError, NotAllowed
from bot.forms import SOMEONE_ELSES_FORM, FormErrors
from bot.phones import normalise_phone
from bot.prescreen import eligibility
from bot.prescreen.outcomes import OUTCOMES, SCREENED, UNANSWERED, label
from bot.referrals.workflow import open_referral
from bot.studies.lookup import study_or_error
from bot.timeutil import dst_note, local_to_utc
from storage import audit
from storage.models import Candidate, Member, PrescreenCall, Study
from storage.repositories import candidates as cand_repo
from storage.repositories import studies as study_repo
from storage.repositories.callbacks import call_times_since

MAX_NOTES = 2000
ADD_ON_PAGE_FIRST = ("Add the candidate on the secure page first (button above), or choose "
                     "Existing candidate.")


@dataclass
class NewCandidateInput:
    name: str
    phone: str
    dob: dt.date | None
    region: str | None
    timezone: str | None
    consent: bool


@dataclass
class CallInput:
    study_key: str
    coordinator: str
    outcome: str | None
    existing_ref: str | None = None
    new: NewCandidateInput | None = None
    raw_answers: dict[str, Any] = field(default_factory=dict)
    site_key: str | None = None
    callback_date: dt.date | None = None
    callback_time: str | None = None
    notes: str | None = None
    idempotency_key: str | None = None


@dataclass
class CallLogged:
    ref: str
    study_key: str
    attempt_no: int
    outcome: str
    failed_criteria: list[str]
    passed_criteria: list[str]
    follow_up: str
    candidate_status: str
    callback_due: dt.datetime | None = None
    referral_id: int | None = None
    replay: bool = False
    warning: str | None = None

    @property
    def summary(self) -> str:
        parts = [self.ref, f"attempt {self.attempt_no}", label(self.outcome).lower()]
        if self.follow_up:
            parts.append(self.follow_up)
        return " · ".join(parts)


def _validate_new(ctx: AppContext, new: NewCandidateInput, today: dt.date,
                  errors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    name = " ".join((new.name or "").split())
    if not name:
        errors["name"] = "Enter the candidate's name."
    elif len(name) > MAX_NAME:
        errors["name"] = f"At most {MAX_NAME} characters."
    out["name"] = name
    try:
        out["phone"] = normalise_phone(new.phone or "")
    except ValueError as exc:
        errors["phone"] = str(exc)
    if new.dob is None:
        errors["dob"] = "Pick the date of birth."
    elif new.dob > today:
        errors["dob"] = "Date of birth is in the future."
    elif not 0 <= age_on(new.dob, today) <= 120:
        errors["dob"] = "That makes the candidate older than 120. Check the year."
    out["dob"] = new.dob
    region = (new.region or "").upper() or None
    if region and region not in regions.STATES:
        errors["region"] = "Pick a US state or territory."
    out["region"] = region
    tz = new.timezone or regions.default_timezone(region, ctx.settings.default_timezone)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = "Pick a time zone."
    out["timezone"] = tz
    out["consent"] = bool(new.consent)
    return out


def log_call_from_form(ctx: AppContext, user_id: str, study_key: str | None,
                       read: Callable[[Study], CallInput]) -> CallLogged:
    """A submitted form: `read` turns its entries into a CallInput for the study it names (the
    questions come from the study), then the call is logged."""
    if not study_key:
        raise DomainError("Pick a study.")
    with ctx.db.session() as session:
        inp = read(study_or_error(session, study_key, user_id))
    return log_call(ctx, inp)


def log_call(ctx: AppContext, inp: CallInput) -> CallLogged:
    """Validate and store one call. Raises FormErrors (nothing stored) or a DomainError."""
    result = _log_call(ctx, inp)
    if result.callback_due is not None and not result.replay:
        result.warning = callback_warning(ctx, inp.coordinator, result.callback_due)
    return result


def callback_warning(ctx: AppContext, coordinator: str, due_at: dt.datetime) -> str | None:
    """A heads-up when the callback hits a busy block in the coordinator's Outlook calendar."""
    with ctx.db.session() as session:
        member = study_repo.get_member(session, coordinator)
    if member is None or not member.mailbox:
        return None
    block = callback_collision(ctx, member, due_at)
    return collision_warning(block, member.timezone) if block is not None else None


def _log_call(ctx: AppContext, inp: CallInput) -> CallLogged:
    now = ctx.clock.now()
    with ctx.db.session() as session:
        # who may log calls here is checked before anything is answered, replays included
        study = study_or_error(session, inp.study_key, inp.coordinator)
        require_role(session, inp.coordinator, study, Action.LOG_CALL)
        if inp.idempotency_key:
            previous = cand_repo.call_by_key(session, inp.idempotency_key)
            if previous is not None:
                if previous.study_id != study.id or previous.coordinator.slack_user_id != \
                        inp.coordinator:
                    raise NotAllowed(SOMEONE_ELSES_FORM)
                return _replay(session, previous)
        member = study_repo.get_member(session, inp.coordinator)
        assert member is not None
        errors: dict[str, str] = {}
        today_local = now.astimezone(ZoneInfo(study.timezone)).date()

        candidate: Candidate | None = None
        new_fields: dict[str, Any] | None = None
        if inp.existing_ref:
            candidate = cand_repo.by_ref(session, inp.existing_ref, for_update=True)
            if candidate is None or candidate.study_id != study.id:
                errors["existing_ref"] = (f"No {study.key} candidate {inp.existing_ref.upper()[:20]}. "
                                          f"Check the code, or log a new candidate.")
        elif ctx.settings.portal and inp.existing_ref is None:
            # identifiers are entered on the secure page only, never through Slack
            errors["candidate"] = ADD_ON_PAGE_FIRST
        elif inp.new is not None and not ctx.settings.portal:
            new_fields = _validate_new(ctx, inp.new, today_local, errors)
        else:
            errors["existing_ref"] = "Enter the reference code, or choose New candidate."

        outcome = inp.outcome
        if outcome not in OUTCOMES:
            errors["outcome"] = "Choose how the call ended."

        questions = list(study.questions)
        answers: dict[str, Any] = {}
        for q in questions:
            try:
                value = eligibility.parse_answer(q, inp.raw_answers.get(q.qid))
            except eligibility.AnswerError as exc:
                errors[f"answer:{q.qid}"] = str(exc)
                continue
            if value is not None:
                answers[q.qid] = value
        ev = eligibility.evaluate(questions, answers)
        if outcome == "pre_qualified" and not ev.failed:
            for qid in ev.missing:
                errors.setdefault(f"answer:{qid}", "Answer this to pre-qualify the candidate.")

        if outcome and outcome not in SCREENED and outcome != "do_not_call" and outcome in OUTCOMES:
            # unanswered or declined calls carry no questionnaire
            answers, ev = {}, eligibility.Evaluation()
        elif ev.failed and outcome in ("pre_qualified", "considering", "callback_requested"):
            outcome = "disqualified"

        tz_name = (candidate.timezone if candidate is not None
                   else (new_fields or {}).get("timezone") or study.timezone)
        due_at: dt.datetime | None = None
        if outcome == "callback_requested":
            if candidate is not None and candidate.do_not_call:
                errors["outcome"] = (f"{candidate.ref_code} is on do-not-call: no callbacks. "
                                     "Choose another outcome.")
            elif inp.callback_date is None:
                errors["callback_date"] = "Pick the day the candidate asked to be called back."
            elif not inp.callback_time:
                errors["callback_time"] = "Pick the time the candidate asked for."
            else:
                region = (candidate.region if candidate is not None
                          else (new_fields or {}).get("region"))
                due_at = _callback_due(ctx, session, inp.callback_date, inp.callback_time, tz_name,
                                       now, candidate, region, study, errors)

        notes = None if ctx.settings.portal else (inp.notes or "").strip() or None
        if notes and len(notes) > MAX_NOTES:
            errors["notes"] = f"Notes are limited to {MAX_NOTES} characters."

        site = None
        if outcome == "pre_qualified":
            active_sites = [s for s in study.sites if s.active]
            site = next((s for s in active_sites if s.key == inp.site_key), None) if inp.site_key \
                else (active_sites[0] if active_sites else None)
            if inp.site_key and site is None:
                errors["site"] = "Pick one of the study's sites."

        if new_fields is not None and "phone" in new_fields and new_fields.get("dob") \
                and not errors.keys() & {"phone", "dob"}:
            parts = (study.key, new_fields["phone"], new_fields["dob"].isoformat())
            existing = cand_repo.by_dedupe_index(session, study.id, ctx.cipher.indexes(*parts))
            dedupe = ctx.cipher.index(*parts)
            if existing is not None:
                errors["phone"] = (f"Already on file as {existing.ref_code}. Choose Existing "
                                   f"candidate and enter {existing.ref_code}.")
            new_fields["dedupe"] = dedupe

        if errors:
            raise FormErrors(errors)
        assert outcome is not None

        actor = inp.coordinator
        if candidate is None:
            assert new_fields is not None
            candidate = _create_candidate(ctx, session, study, new_fields, member, actor)
        before = _candidate_state(candidate)
        attempt_no = candidate.attempts + 1
        call = cand_repo.add_call(
            session,
            candidate_id=candidate.id,
            study_id=study.id,
            coordinator_id=member.id,
            attempt_no=attempt_no,
            outcome=outcome,
            answers=answers,
            eligible=ev.eligible if answers else None,
            failed_criteria=ev.failed,
            notes_enc=ctx.cipher.encrypt_optional(notes),
            called_at=now,
            idempotency_key=inp.idempotency_key,
        )
        candidate.attempts = attempt_no
        candidate.last_outcome = outcome
        candidate.last_called_at = now
        candidate.first_called_at = candidate.first_called_at or now
        candidate.owner_id = member.id
        candidate.status = OUTCOMES[outcome].status
        follow_up = ""
        referral_id = None

        if outcome == "do_not_call":
            candidate.do_not_call = True
            cancel_open_callbacks(session, candidate, actor, "candidate asked not to be called")
            follow_up = "flagged do-not-call; no more calls"
        else:
            on_call_logged(session, candidate, actor=actor, now=now)
        if outcome in UNANSWERED:
            planned = cadence.after_unanswered(ctx, session, candidate=candidate, study=study,
                                               owner=member, actor=actor)
            if candidate.status == "unreachable":
                follow_up = f"unreachable after {candidate.attempts} attempts"
            elif planned is not None:
                follow_up = (f"next attempt {_local_label(planned.due_at, tz_name)} candidate time · "
                             f"{max(study.max_attempts - candidate.attempts, 0)} attempts left")
            else:
                follow_up = f"{max(study.max_attempts - candidate.attempts, 0)} attempts left"
        elif outcome == "disqualified":
            follow_up = ("failed: " + ", ".join(ev.failed)) if ev.failed else "disqualified by coordinator"
        elif outcome == "pre_qualified":
            referral = open_referral(ctx, session, study=study, candidate=candidate, call=call,
                                     site=site, actor=actor, passed=ev.passed)
            referral_id = referral.id
            follow_up = ("referral sent for approval" if referral.state == "pending_approval"
                         else "referral approved, site notified")
        elif outcome == "callback_requested" and due_at is not None:
            cb = schedule_callback(ctx, session, candidate=candidate, study=study, owner=member,
                                   due_at=due_at, call=call, actor=actor)
            follow_up = "callback " + _local_label(cb.due_at, tz_name) + " candidate time"
            if inp.callback_date is not None and inp.callback_time:
                hour, minute = (int(x) for x in inp.callback_time.split(":")[:2])
                note = dst_note(dt.datetime.combine(inp.callback_date, dt.time(hour, minute)), tz_name)
                if note:
                    follow_up += f" ({note})"

        audit.record(session, actor=actor, action="call.logged", entity="candidate",
                     entity_id=candidate.ref_code, before=before,
                     after={**_candidate_state(candidate), "call_id": call.id, "attempt": attempt_no,
                            "outcome": outcome, "failed": ev.failed})
        return CallLogged(
            ref=candidate.ref_code, study_key=study.key, attempt_no=attempt_no, outcome=outcome,
            failed_criteria=ev.failed, passed_criteria=ev.passed, follow_up=follow_up,
            candidate_status=candidate.status, callback_due=due_at, referral_id=referral_id,
        )


def _callback_due(ctx: AppContext, session: Session, day: dt.date, hhmm: str, tz_name: str,
                  now: dt.datetime, candidate: Candidate | None, region: str | None, study: Study,
                  errors: dict[str, str]) -> dt.datetime | None:
    try:
        hour, minute = (int(x) for x in hhmm.split(":")[:2])
        local = dt.datetime.combine(day, dt.time(hour, minute))
    except ValueError:
        errors["callback_time"] = "Pick a time like 16:00."
        return None
    due = local_to_utc(local, tz_name)
    if due <= now:
        now_local = now.astimezone(ZoneInfo(tz_name))
        errors["callback_time"] = (f"That time has passed: it is {now_local:%a %H:%M} for the "
                                   "candidate. Pick a later time.")
        return None

    calls = [now]  # the call being logged
    if candidate is not None:
        calls += call_times_since(session, candidate.id, due - dt.timedelta(hours=24))
    problem = window_problem(ctx, study=study, candidate=candidate, tz_name=tz_name, due_at=due,
                             region=region, calls_at=calls)
    if problem:
        note = dst_note(local, tz_name)
        errors["callback_time"] = f"{note} {problem}" if note else problem
        return None
    return due


def _local_label(at: dt.datetime, tz_name: str) -> str:
    local = at.astimezone(ZoneInfo(tz_name))
    return f"{local:%a %b} {local.day} {local:%H:%M} {local.tzname()}"


def _create_candidate(ctx: AppContext, session: Session, study: Study, f: dict[str, Any],
                      member: Member, actor: str) -> Candidate:
    c = ctx.cipher
    cand = cand_repo.create(session, study.id, study.key, {
        "name_enc": c.encrypt(f["name"]),
        "phone_enc": c.encrypt(f["phone"]),
        "dob_enc": c.encrypt_optional(f["dob"].isoformat() if f["dob"] else None),
        "phone_index": c.index(f["phone"]),
        "name_index": c.index(f["name"]),
        "dedupe_index": f.get("dedupe"),
        "region": f["region"],
        "timezone": f["timezone"],
        "consent_to_contact": f["consent"],
        "status": "new",
        "attempts": 0,
        "owner_id": member.id,
    })
    audit.record(session, actor=actor, action="candidate.created", entity="candidate",
                 entity_id=cand.ref_code, after=_candidate_state(cand))
    return cand


def _candidate_state(c: Candidate) -> dict[str, Any]:
    """What the audit trail keeps about a candidate: no PHI, only state."""
    return {"status": c.status, "attempts": c.attempts, "do_not_call": c.do_not_call,
            "region": c.region, "timezone": c.timezone, "consent": c.consent_to_contact}


def _replay(session: Session, call: PrescreenCall) -> CallLogged:
    cand = call.candidate
    return CallLogged(ref=cand.ref_code, study_key=cand.study.key, attempt_no=call.attempt_no,
                      outcome=call.outcome, failed_criteria=list(call.failed_criteria),
                      passed_criteria=[], follow_up="already logged", candidate_status=cand.status,
                      replay=True)
