"""Members' access: list, deactivate, reactivate, and what a deactivated member still owns."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from storage import audit
from storage.models import Callback, Candidate, Member, Membership, Study
from storage.repositories.queue import WORKING_STATUSES
from storage.vocabulary import CALLBACK_OPEN_STATUSES


def find(session: Session, slack_user_id: str) -> Member | None:
    """The member, active or not (for the commands that change access)."""
    stmt = (select(Member).where(Member.slack_user_id == slack_user_id)
            .options(selectinload(Member.memberships).selectinload(Membership.study)))
    return session.scalars(stmt).first()


def list_all(session: Session) -> list[Member]:
    stmt = (select(Member).options(selectinload(Member.memberships).selectinload(Membership.study))
            .order_by(Member.active.desc(), Member.slack_user_id))
    return list(session.scalars(stmt))


def roles_of(member: Member) -> dict[str, str]:
    return {m.study.key: m.role for m in sorted(member.memberships, key=lambda m: m.study.key)}


def deactivate(session: Session, member: Member, *, actor: str, reason: str) -> dict[str, str]:
    """Every role removed and the member marked inactive, in one audited change. Returns the
    roles taken away. A member already inactive is left as is (no second event)."""
    if not member.active:
        return {}
    roles = roles_of(member)
    member.memberships.clear()
    member.active = False
    session.flush()
    audit.record(session, actor=actor, action="member.deactivated", entity="member",
                 entity_id=member.slack_user_id, before={"active": True, "roles": roles},
                 after={"active": False, "roles": {}}, reason=reason[:300])
    return roles


def reactivate(session: Session, member: Member, *, actor: str, reason: str) -> bool:
    """Active again, with no roles (they come from the next studies import). False if it was."""
    if member.active:
        return False
    member.active = True
    session.flush()
    audit.record(session, actor=actor, action="member.reactivated", entity="member",
                 entity_id=member.slack_user_id, before={"active": False},
                 after={"active": True, "roles": roles_of(member)}, reason=reason[:300])
    return True


def last_change(session: Session, slack_user_id: str) -> str | None:
    """When and by whom the member was last deactivated, from the audit trail."""
    for event in reversed(audit.history(session, "member", slack_user_id)):
        if event.action == "member.deactivated":
            return f"{event.at:%Y-%m-%d %H:%M} UTC by {event.actor}"
    return None


def open_work(session: Session, member_id: int) -> tuple[list[str], list[str]]:
    """Reference codes of the open leads and of the open callbacks the member owns."""
    leads = session.scalars(select(Candidate.ref_code).where(
        Candidate.owner_id == member_id, Candidate.status.in_(WORKING_STATUSES))
        .order_by(Candidate.ref_code)).all()
    callbacks = session.scalars(select(Candidate.ref_code).join(
        Callback, Callback.candidate_id == Candidate.id).where(
        Callback.owner_id == member_id, Callback.status.in_(CALLBACK_OPEN_STATUSES))
        .order_by(Candidate.ref_code)).all()
    return list(leads), list(callbacks)


def absent_from(session: Session, slack_ids: Iterable[str]) -> list[Member]:
    """Active members not in `slack_ids` (a studies file), roles loaded."""
    keep = set(slack_ids)
    return [m for m in list_all(session) if m.active and m.slack_user_id not in keep]


def coordinator_timezones(session: Session) -> list[tuple[str, str]]:
    """(slack id, timezone) of active members who coordinate an active study."""
    stmt = (select(Member.slack_user_id, Member.timezone).distinct()
            .join(Membership, Membership.member_id == Member.id)
            .join(Study, Study.id == Membership.study_id)
            .where(Member.active.is_(True), Study.active.is_(True),
                   Membership.role == "coordinator")
            .order_by(Member.slack_user_id))
    return [(sid, tz) for sid, tz in session.execute(stmt)]


def population(session: Session) -> dict[str, int]:
    """How many candidates and members the database holds (the sandbox's demo check)."""
    return {"candidates": session.scalar(select(func.count()).select_from(Candidate)) or 0,
            "members": session.scalar(select(func.count()).select_from(Member)) or 0}
