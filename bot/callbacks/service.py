"""Callbacks: schedule, close, and what the reminder buttons do (snooze, done, reschedule,
hand off). Every change is authorised, compare-and-set on the row's version, and audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import outbox
from bot.access import POLICY, Action, may, nowhere_text, require_role
from bot.callbacks import windows
from bot.callbacks.views import handoff_dm
from bot.context import AppContext
from bot.errors import DomainError, InvalidInput, NotAllowed
from bot.timeutil import dst_note, local_to_utc
from storage import audit
from storage.models import Callback, Candidate, Member, PrescreenCall, Study
from storage.repositories import callbacks as repo
from storage.repositories import studies as study_repo
from storage.vocabulary import CALLBACK_OPEN_STATUSES as OPEN

SNOOZE = dt.timedelta(minutes=15)


def remind_lead(ctx: AppContext) -> dt.timedelta:
    return dt.timedelta(minutes=ctx.settings.callback_remind_minutes)


def escalate_after(ctx: AppContext) -> dt.timedelta:
    return dt.timedelta(minutes=ctx.settings.callback_escalate_minutes)


def schedule_callback(ctx: AppContext, session: Session, *, candidate: Candidate, study: Study,
                      owner: Member, due_at: dt.datetime, call: PrescreenCall | None,
                      actor: str, kind: str = "requested") -> Callback:
    """A new open callback; any other open one for the candidate is closed as replaced."""
    cancel_open_callbacks(session, candidate, actor, "replaced by a new callback")
    now = ctx.clock.now()
    cb = repo.add(session, candidate_id=candidate.id, study_id=study.id, owner_id=owner.id,
                  call_id=call.id if call else None, due_at=due_at,
                  remind_at=max(due_at - remind_lead(ctx), now), status="scheduled", kind=kind,
                  window_check={"tz": candidate.timezone, "region": candidate.region,
                                "checked_at": now.isoformat()})
    audit.record(session, actor=actor, action="callback.scheduled", entity="callback",
                 entity_id=cb.id, after={"candidate": candidate.ref_code,
                                         "due_at": due_at.isoformat(), "kind": kind,
                                         "owner": owner.slack_user_id})
    return cb


def cancel_open_callbacks(session: Session, candidate: Candidate, actor: str, reason: str) -> int:
    rows = repo.open_for_candidate(session, candidate.id)
    for cb in rows:
        before = cb.status
        cb.status = "cancelled"
        cb.version += 1
        audit.record(session, actor=actor, action="callback.cancelled", entity="callback",
                     entity_id=cb.id, before={"status": before}, after={"status": "cancelled"},
                     reason=reason)
    return len(rows)


def on_call_logged(session: Session, candidate: Candidate, *, actor: str, now: dt.datetime) -> int:
    """A call was made: open callbacks are done; missed ones get their (late) completion time."""
    done = 0
    for cb in repo.open_for_candidate(session, candidate.id):
        before = cb.status
        cb.status, cb.completed_at = "done", now
        cb.version += 1
        done += 1
        audit.record(session, actor=actor, action="callback.done", entity="callback",
                     entity_id=cb.id, before={"status": before}, after={"status": "done"},
                     reason="call logged")
    for cb in repo.missed_uncompleted(session, candidate.id):
        cb.completed_at = now
        cb.version += 1
        audit.record(session, actor=actor, action="callback.completed_late", entity="callback",
                     entity_id=cb.id, before={"status": "missed"},
                     after={"status": "missed", "completed_at": now.isoformat()}, reason="call logged")
    return done


# ----- reminder buttons -----

@dataclass
class ActionResult:
    message: str  # replaces the reminder DM
    ref: str
    changed: bool = True


@dataclass
class CallbackInfo:
    callback_id: int
    ref: str
    study_key: str
    candidate_tz: str
    viewer_tz: str
    due_at: dt.datetime
    coordinators: list[tuple[str, str]]  # (slack id, display name) other than the owner


def _locked(session: Session, callback_id: int) -> Callback:
    cb = repo.lock(session, callback_id)
    if cb is None:
        raise DomainError("That callback no longer exists. Type `/prescreen callbacks` for yours.")
    return cb


def _cas(session: Session, cb: Callback, **values: object) -> None:
    """Apply a change only if nobody changed the callback since we read it."""
    if not repo.cas(session, cb.id, cb.version, **values):
        raise DomainError("Someone changed this callback a moment ago; nothing more was done. "
                          "Type `/prescreen callbacks` to see where it stands.")


def _authorize(session: Session, cb: Callback, actor: str) -> None:
    """Re-read the actor's role now: owning the callback is not enough once the role is gone,
    and any member the policy allows may act on a colleague's callback."""
    require_role(session, actor, cb.candidate.study, Action.CHANGE_CALLBACK)


def _local(at: dt.datetime, tz_name: str) -> str:
    local = at.astimezone(ZoneInfo(tz_name))
    return f"{local:%a %b} {local.day} {local:%H:%M}"


def _state_text(cb: Callback, viewer_tz: str, now: dt.datetime) -> str:
    ref = cb.candidate.ref_code
    if cb.status == "done":
        return f"Done: the callback to {ref} is closed."
    if cb.status == "cancelled":
        return f"The callback to {ref} was cancelled or replaced."
    if cb.status == "snoozed" and cb.remind_at > now:
        return f"Snoozed: I'll remind you about {ref} again at {_local(cb.remind_at, viewer_tz)}."
    if cb.status == "missed":
        return f"The callback to {ref} was missed. Log the call or reschedule it."
    return f"Callback to {ref} due {_local(cb.due_at, viewer_tz)} your time."


def _viewer_tz(session: Session, actor: str, fallback: str) -> str:
    member = study_repo.get_member(session, actor)
    return member.timezone if member is not None else fallback


def _acting(session: Session, callback_id: int, actor: str) -> tuple[Callback, str]:
    """The callback, locked, after checking the actor may change it; and the actor's time zone."""
    cb = _locked(session, callback_id)
    _authorize(session, cb, actor)
    return cb, _viewer_tz(session, actor, cb.owner.timezone)


def snooze(ctx: AppContext, *, callback_id: int, actor: str) -> ActionResult:
    now = ctx.clock.now()
    with ctx.db.session() as session:
        cb, tz = _acting(session, callback_id, actor)
        if cb.status not in OPEN or (cb.status == "snoozed" and cb.remind_at > now):
            return ActionResult(_state_text(cb, tz, now), cb.candidate.ref_code, changed=False)
        until = now + SNOOZE
        _cas(session, cb, status="snoozed", remind_at=until)
        audit.record(session, actor=actor, action="callback.snoozed", entity="callback",
                     entity_id=cb.id, before={"status": cb.status},
                     after={"status": "snoozed", "remind_at": until.isoformat()})
        return ActionResult(f":zzz: Snoozed: I'll remind you about {cb.candidate.ref_code} again at "
                            f"{_local(until, tz)}.", cb.candidate.ref_code)


def mark_done(ctx: AppContext, *, callback_id: int, actor: str) -> ActionResult:
    now = ctx.clock.now()
    with ctx.db.session() as session:
        cb, tz = _acting(session, callback_id, actor)
        ref = cb.candidate.ref_code
        if cb.status in OPEN:
            _cas(session, cb, status="done", completed_at=now)
        elif cb.status == "missed" and cb.completed_at is None:
            _cas(session, cb, completed_at=now)
        else:
            return ActionResult(_state_text(cb, tz, now), ref, changed=False)
        audit.record(session, actor=actor, action="callback.done", entity="callback",
                     entity_id=cb.id, before={"status": cb.status}, after={"status": "done"},
                     reason="marked done from the reminder")
        return ActionResult(f":white_check_mark: Done: the callback to {ref} is closed. "
                            f"Log the call with `/prescreen log {ref}` if you haven't.", ref)


def callback_info(ctx: AppContext, *, callback_id: int, actor: str) -> CallbackInfo:
    """What the reschedule and hand-off modals show, after the same authorisation."""
    with ctx.db.session() as session:
        cb = _locked(session, callback_id)
        _authorize(session, cb, actor)
        if cb.status not in (*OPEN, "missed"):
            raise DomainError(_state_text(cb, cb.owner.timezone, ctx.clock.now()))
        study = cb.candidate.study
        others: dict[str, str] = {}
        for role in POLICY[Action.CHANGE_CALLBACK]:
            for m in study_repo.members_with_role(session, study.id, role):
                if m.active and m.id != cb.owner_id:
                    others.setdefault(m.slack_user_id, m.display_name or m.slack_user_id)
        return CallbackInfo(cb.id, cb.candidate.ref_code, study.key, cb.candidate.timezone,
                            _viewer_tz(session, actor, cb.owner.timezone), cb.due_at,
                            sorted(others.items(), key=lambda kv: kv[1].lower()))


def reschedule(ctx: AppContext, *, callback_id: int, actor: str, day: dt.date | None,
               hhmm: str | None) -> ActionResult:
    """Move the callback to a new candidate-local time. InvalidInput names what to fix."""
    if day is None:
        raise InvalidInput("Pick the day.", field="day")
    if not hhmm:
        raise InvalidInput("Pick the time.", field="time")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        cb = _locked(session, callback_id)
        _authorize(session, cb, actor)
        cand, study = cb.candidate, cb.candidate.study
        if cb.status not in (*OPEN, "missed"):
            raise DomainError(_state_text(cb, cb.owner.timezone, now))
        hour, minute = (int(x) for x in hhmm.split(":")[:2])
        local = dt.datetime.combine(day, dt.time(hour, minute))
        due = local_to_utc(local, cand.timezone)
        if due <= now:
            raise InvalidInput("That time has passed for the candidate. Pick a later time.",
                               field="time")
        calls = repo.call_times_since(session, cand.id, due - dt.timedelta(hours=24))
        problem = windows.window_problem(ctx, study=study, candidate=cand, tz_name=cand.timezone,
                                         due_at=due, calls_at=calls)
        if problem:
            raise InvalidInput(problem, field="time")
        before = {"status": cb.status, "due_at": cb.due_at.isoformat()}
        remind_at = max(due - remind_lead(ctx), now)
        if cb.status == "missed":
            # the missed one stays on record (it counts as missed); a new one takes its place
            new = repo.add(session, candidate_id=cand.id, study_id=study.id, owner_id=cb.owner_id,
                           call_id=cb.call_id, due_at=due, remind_at=remind_at, status="scheduled",
                           kind=cb.kind, window_check=dict(cb.window_check or {}))
            _cas(session, cb, completed_at=cb.completed_at)
            target_id = new.id
        else:
            _cas(session, cb, due_at=due, remind_at=remind_at, status="scheduled",
                     reminded_at=None, reminded_late=False)
            target_id = cb.id
        audit.record(session, actor=actor, action="callback.rescheduled", entity="callback",
                     entity_id=target_id, before=before,
                     after={"status": "scheduled", "due_at": due.isoformat()})
        tz = _viewer_tz(session, actor, cb.owner.timezone)
        note = dst_note(local, cand.timezone)
        return ActionResult(
            f":calendar: Rescheduled: {cand.ref_code} {_local(due, tz)} your time "
            f"({_local(due, cand.timezone)} candidate time)." + (f" {note}" if note else ""),
            cand.ref_code)


def hand_off(ctx: AppContext, *, callback_id: int, actor: str, to_user: str | None) -> ActionResult:
    if not to_user:
        raise InvalidInput("Pick who takes the callback.", field="to")
    now = ctx.clock.now()
    with ctx.db.session() as session:
        cb = _locked(session, callback_id)
        _authorize(session, cb, actor)
        study = cb.candidate.study
        if cb.status not in OPEN:
            raise DomainError(_state_text(cb, cb.owner.timezone, now))
        target = study_repo.get_member(session, to_user)
        if target is None or not may(session, to_user, study, Action.CHANGE_CALLBACK):
            raise InvalidInput(f"<@{to_user}> is not a {study.key} coordinator. Pick someone else.",
                               field="to")
        if target.id == cb.owner_id:
            raise InvalidInput("They already own this callback. Pick someone else.", field="to")
        previous = cb.owner.slack_user_id
        remind_at = max(cb.due_at - remind_lead(ctx), now)
        _cas(session, cb, owner_id=target.id, remind_at=remind_at, reminded_at=None,
                 status="scheduled")
        audit.record(session, actor=actor, action="callback.handed_off", entity="callback",
                     entity_id=cb.id, before={"owner": previous}, after={"owner": to_user})
        text, blocks = handoff_dm(cb.candidate.ref_code, study.key, actor, cb.due_at,
                                  target.timezone, cb.candidate.timezone, now)
        outbox.post(ctx, session, key=f"cb-handoff:{cb.id}:{cb.version}:{to_user}",
                    kind="callback_handoff", channel=to_user, text=text, blocks=blocks,
                    study_key=study.key)
        return ActionResult(f":handshake: Handed off: <@{to_user}> now owns the callback to "
                            f"{cb.candidate.ref_code} and gets its reminder.", cb.candidate.ref_code)


@dataclass
class UpcomingCallback:
    callback_id: int
    ref: str
    study_key: str
    due_at: dt.datetime
    candidate_tz: str
    kind: str
    attempt: int
    status: str


def upcoming(ctx: AppContext, user_id: str, limit: int = 20) -> tuple[str, list[UpcomingCallback], int]:
    """The caller's open callbacks from 12 h ago on, soonest first: (viewer tz, rows, total)."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        member = study_repo.get_member(session, user_id)
        if member is None:
            raise NotAllowed(nowhere_text([], Action.CHANGE_CALLBACK))
        since = now - dt.timedelta(hours=12)
        rows = repo.upcoming_for_owner(session, member.id, since=since, limit=limit)
        total = repo.count_upcoming_for_owner(session, member.id, since=since)
        out = [UpcomingCallback(cb.id, cb.candidate.ref_code, cb.candidate.study.key, cb.due_at,
                                cb.candidate.timezone, cb.kind, cb.candidate.attempts + 1, cb.status)
               for cb in rows]
        return member.timezone, out, total
