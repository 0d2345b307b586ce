"""Delegation: an approver (or admin) lets someone decide referrals in their place until the end
of a day, in the approver's own time zone. `/prescreen delegate @kim until 2026-12-20 [STUDY]`,
`/prescreen delegate` (list), `/prescreen delegate cancel`.

A delegation counts while now < its end: one that ended a minute ago no longer does. Each change
is audited; the delegate is told by DM (through the outbox)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import outbox
from bot.access import ADMIN, APPROVER, COORDINATOR, Action, require_role, require_somewhere, role_of
from bot.context import AppContext
from bot.errors import InvalidInput, NotAllowed
from bot.studies.lookup import study_or_error
from storage import audit
from storage.models import Delegation, Study
from storage.repositories import approvals as repo
from storage.repositories import studies as study_repo

MAX_DAYS = 366
DELEGATE_ROLES = (COORDINATOR, APPROVER, ADMIN)  # who may stand in (never a stakeholder)


@dataclass(frozen=True)
class DelegationLine:
    study_key: str
    approver: str
    delegate: str
    ends_at: dt.datetime


@dataclass(frozen=True)
class Delegated:
    delegate: str
    until: dt.date
    ends_at: dt.datetime
    studies: list[str]
    skipped: list[str]  # studies where the delegate is not a member


def end_of_day(day: dt.date, timezone: str) -> dt.datetime:
    """The instant the day ends in that time zone (midnight that follows), in UTC."""
    nxt = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), ZoneInfo(timezone))
    return nxt.astimezone(dt.UTC)


def until_text(ends_at: dt.datetime, fallback_tz: str) -> str:
    """When a delegation ends, in Slack's date formatting (each reader's own zone)."""
    local = ends_at.astimezone(ZoneInfo(fallback_tz))
    return (f"<!date^{int(ends_at.timestamp())}^{{date_short_pretty}} {{time}}|"
            f"{local:%b} {local.day} {local:%H:%M} {local.tzname()}>")


def _studies(session: Session, actor: str, study_key: str | None) -> list[Study]:
    if study_key:
        study = study_or_error(session, study_key, actor)
        require_role(session, actor, study, Action.DELEGATE_APPROVALS)
        return [study]
    return require_somewhere(session, actor, Action.DELEGATE_APPROVALS)


def delegate(ctx: AppContext, *, actor: str, delegate_id: str, until: dt.date,
             study_key: str | None = None) -> Delegated:
    now = ctx.clock.now()
    if delegate_id == actor:
        raise InvalidInput("Name someone else: you cannot be your own delegate.")
    with ctx.db.session() as session:
        studies = _studies(session, actor, study_key)
        me = study_repo.get_member(session, actor)
        tz = me.timezone if me is not None and me.timezone else "UTC"
        today = now.astimezone(ZoneInfo(tz)).date()
        if until < today:
            raise InvalidInput(f"{until.isoformat()} has passed. Give the last day the delegate "
                               f"stands in, like `until {(today + dt.timedelta(days=7)).isoformat()}`.")
        if until > today + dt.timedelta(days=MAX_DAYS):
            raise InvalidInput("A delegation lasts at most a year. Give an earlier day.")
        ends_at = end_of_day(until, tz)
        done, skipped = [], []
        for study in studies:
            if role_of(session, delegate_id, study) not in DELEGATE_ROLES:
                skipped.append(study.key)
                continue
            for old in repo.delegates_of(session, study.id, actor, now):
                old.cancelled_at = now  # one delegate at a time per study: the new one replaces it
            row = repo.add_delegation(session, study_id=study.id, approver=actor,
                                      delegate=delegate_id, starts_at=now, ends_at=ends_at,
                                      created_by=actor)
            audit.record(session, actor=actor, action="delegation.created", entity="study",
                         entity_id=study.key,
                         after={"delegation_id": row.id, "approver": actor,
                                "delegate": delegate_id, "ends_at": ends_at.isoformat(),
                                "until": until.isoformat(), "timezone": tz})
            done.append(study.key)
        if not done:
            keys = ", ".join(s.key for s in studies)
            raise NotAllowed(f"<@{delegate_id}> is not a coordinator, approver or admin of {keys}, "
                             "so they cannot decide in your place. Ask your admin to add them.")
        outbox.post(ctx, session, key=f"delegation:{actor}:{delegate_id}:{now.isoformat()}",
                    kind="delegation_dm", channel=delegate_id, study_key=done[0],
                    text=f":raised_hand: <@{actor}> made you their approval delegate for "
                         f"{', '.join(done)} until {until_text(ends_at, tz)}. You can approve or "
                         "reject those referrals in their place; the card shows "
                         f"\"for <@{actor}>\".")
        return Delegated(delegate_id, until, ends_at, done, skipped)


def listing(ctx: AppContext, *, actor: str) -> list[DelegationLine]:
    """Delegations in force that the user gave or received."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        rows: list[Delegation] = repo.involving(session, actor, now)
        keys = {s.id: s.key for s in study_repo.list_studies(session, active_only=False)}
        return [DelegationLine(keys.get(r.study_id, "?"), r.approver, r.delegate, r.ends_at)
                for r in rows]


def cancel(ctx: AppContext, *, actor: str) -> list[str]:
    """End every delegation the user gave, now. Returns the study keys."""
    now = ctx.clock.now()
    with ctx.db.session() as session:
        rows = repo.cancel_given(session, actor, now)
        keys = {s.id: s.key for s in study_repo.list_studies(session, active_only=False)}
        for r in rows:
            audit.record(session, actor=actor, action="delegation.cancelled", entity="study",
                         entity_id=keys.get(r.study_id, "?"),
                         after={"delegation_id": r.id, "approver": r.approver,
                                "delegate": r.delegate})
        return sorted({keys.get(r.study_id, "?") for r in rows})


def lines_text(lines: list[DelegationLine], actor: str, timezone: str = "UTC") -> str:
    if not lines:
        return ("No delegations in force. `/prescreen delegate @someone until 2026-12-20` lets "
                "them decide your referrals while you are away.")
    out = []
    for d in lines:
        when = until_text(d.ends_at, timezone)
        if d.approver == actor:
            out.append(f"• {d.study_key}: <@{d.delegate}> decides in your place until {when}")
        else:
            out.append(f"• {d.study_key}: you decide in <@{d.approver}>'s place until {when}")
    return "\n".join(out) + "\n`/prescreen delegate cancel` ends the ones you gave."

