"""Studies, sites, questions, members and their roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from storage import audit
from storage.models import Member, Membership, Question, Site, Study

STUDY_FIELDS = (
    "title", "sponsor", "channel_id", "timezone", "approval_required", "max_attempts",
    "min_attempt_days", "digest_time", "calling_window_start", "calling_window_end", "options",
    "approval_signature", "signature_meaning", "approvals_needed", "approval_sla_hours",
)
SITE_FIELDS = ("name", "mailbox", "timezone", "channel_id", "liaison_slack_id")
QUESTION_FIELDS = ("text", "kind", "options", "rule", "required")


def study_keys(session: Session) -> set[str]:
    return set(session.scalars(select(Study.key)))


def get_study(session: Session, key: str, *, children: bool = True) -> Study | None:
    """The study with its sites and questions (without them when `children` is False: one
    query instead of three, for the KPI reads)."""
    stmt = select(Study).where(Study.key == key.upper())
    if children:
        stmt = stmt.options(selectinload(Study.sites), selectinload(Study.questions))
    return session.scalars(stmt).first()


def list_studies(session: Session, active_only: bool = True) -> list[Study]:
    stmt = select(Study).options(selectinload(Study.sites), selectinload(Study.questions))
    if active_only:
        stmt = stmt.where(Study.active.is_(True))
    return list(session.scalars(stmt.order_by(Study.key)))


def _snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in fields}


def upsert_study(session: Session, fields: dict[str, Any], actor: str) -> bool:
    """Create or update a study with its sites and questions. Returns True when created."""
    study = get_study(session, fields["key"])
    created = study is None
    before = None if study is None else _snapshot(study, STUDY_FIELDS)
    if study is None:
        study = Study(key=fields["key"])
        session.add(study)
    for f in STUDY_FIELDS:
        setattr(study, f, fields[f])
    study.active = True
    session.flush()

    existing_sites = {s.key: s for s in study.sites}
    for sf in fields["sites"]:
        site = existing_sites.pop(sf["key"], None)
        if site is None:
            site = Site(study=study, key=sf["key"])
            session.add(site)
        for f in SITE_FIELDS:
            setattr(site, f, sf[f])
        site.active = True
    for gone in existing_sites.values():
        # referrals may point at a site: retire it instead of deleting
        gone.active = False

    existing_q = {q.qid: q for q in study.questions}
    for pos, qf in enumerate(fields["questions"]):
        q = existing_q.pop(qf["qid"], None)
        if q is None:
            q = Question(study=study, qid=qf["qid"])
            session.add(q)
        q.position = pos
        for f in QUESTION_FIELDS:
            setattr(q, f, qf[f])
    for gone_q in existing_q.values():
        session.delete(gone_q)
    session.flush()

    after = _snapshot(study, STUDY_FIELDS)
    after["sites"] = [s["key"] for s in fields["sites"]]
    after["questions"] = [q["qid"] for q in fields["questions"]]
    audit.record(
        session,
        actor=actor,
        action="study.created" if created else "study.imported",
        entity="study",
        entity_id=study.key,
        before=before,
        after=after,
    )
    return created


def get_member(session: Session, slack_user_id: str, *,
               include_inactive: bool = False) -> Member | None:
    """The member with their roles; a deactivated member counts as no member unless asked for."""
    stmt = (
        select(Member)
        .where(Member.slack_user_id == slack_user_id)
        .options(selectinload(Member.memberships).selectinload(Membership.study))
    )
    if not include_inactive:
        stmt = stmt.where(Member.active.is_(True))
    return session.scalars(stmt).first()


def upsert_member(
    session: Session,
    *,
    slack_user_id: str,
    email: str | None,
    timezone: str,
    display_name: str | None,
    mailbox: str | None,
    roles: dict[str, str],
    actor: str,
) -> bool:
    member = get_member(session, slack_user_id, include_inactive=True)
    if member is not None and not member.active:
        raise ValueError(f"{slack_user_id} is deactivated; reactivate before giving roles")
    created = member is None
    before = None
    if member is None:
        member = Member(slack_user_id=slack_user_id, timezone=timezone)
        session.add(member)
    else:
        before = {
            "email": member.email,
            "timezone": member.timezone,
            "roles": {m.study.key: m.role for m in member.memberships},
        }
    member.email = email
    member.timezone = timezone
    member.display_name = display_name
    member.mailbox = mailbox
    session.flush()
    studies = {s.key: s for s in session.scalars(select(Study).where(Study.key.in_(roles)))}
    current = {m.study.key: m for m in member.memberships}
    for key, role in roles.items():
        ms = current.pop(key, None)
        if ms is None:
            member.memberships.append(Membership(study=studies[key], role=role))
        else:
            ms.role = role
    for stale in current.values():
        member.memberships.remove(stale)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="member.created" if created else "member.imported",
        entity="member",
        entity_id=slack_user_id,
        before=before,
        after={"email": email, "timezone": timezone, "roles": dict(roles)},
    )
    return created


def member_timezone(session: Session, slack_user_id: str) -> str | None:
    """The active member's time zone, without loading their memberships."""
    return session.scalar(select(Member.timezone).where(Member.slack_user_id == slack_user_id,
                                                        Member.active.is_(True)))


def role_in(session: Session, slack_user_id: str, study_id: int) -> str | None:
    stmt = (
        select(Membership.role)
        .join(Member, Member.id == Membership.member_id)
        .where(Member.slack_user_id == slack_user_id, Membership.study_id == study_id,
               Member.active.is_(True))
    )
    return session.scalars(stmt).first()


def studies_for(session: Session, slack_user_id: str) -> list[tuple[Study, str]]:
    stmt = (
        select(Study, Membership.role)
        .options(selectinload(Study.sites), selectinload(Study.questions))
        .join(Membership, Membership.study_id == Study.id)
        .join(Member, Member.id == Membership.member_id)
        .where(Member.slack_user_id == slack_user_id, Study.active.is_(True),
               Member.active.is_(True))
        .order_by(Study.key)
    )
    return [(s, r) for s, r in session.execute(stmt)]


def members_with_role(session: Session, study_id: int, role: str) -> list[Member]:
    stmt = (
        select(Member)
        .join(Membership, Membership.member_id == Member.id)
        .where(Membership.study_id == study_id, Membership.role == role,
               Member.active.is_(True))
        .order_by(Member.slack_user_id)
    )
    return list(session.scalars(stmt))


def admin_user_ids(session: Session, study_key: str | None) -> list[str]:
    """Slack ids of the active admins of one study (by key), or of every study when None."""
    stmt = (select(Member.slack_user_id).distinct()
            .join(Membership, Membership.member_id == Member.id)
            .join(Study, Study.id == Membership.study_id)
            .where(Membership.role == "admin", Member.active.is_(True))
            .order_by(Member.slack_user_id))
    if study_key is not None:
        stmt = stmt.where(Study.key == study_key.upper())
    return list(session.scalars(stmt))


def keys_by_id(session: Session) -> dict[int, str]:
    """Every study's key by its id, active or not."""
    return {sid: key for sid, key in session.execute(select(Study.id, Study.key))}


def by_id(session: Session, study_id: int) -> Study | None:
    return session.get(Study, study_id)


def lock_active(session: Session, study_id: int) -> Study | None:
    """The study if still active, row-locked until commit (one writer per study at a time on
    PostgreSQL; SQLite serialises writes anyway)."""
    return session.scalars(select(Study).where(Study.id == study_id, Study.active)
                           .with_for_update()).first()
