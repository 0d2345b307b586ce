"""Who may do what: one table of actions and the roles allowed, one check, one way to say no.

Every use case asks `require_role` (one study) or `studies_where` (the studies a user may act
in). The check re-reads the member and their role from the database each time, so a changed
role or a deactivated member counts from the next request on. Refusals use `refusal_text`."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy.orm import Session

from bot.errors import NotAllowed
from storage.models import Study
from storage.repositories import approvals as approvals_repo
from storage.repositories import studies as study_repo

COORDINATOR, APPROVER, STAKEHOLDER, ADMIN = "coordinator", "approver", "stakeholder", "admin"
ROLES = (COORDINATOR, APPROVER, STAKEHOLDER, ADMIN)


class Action(StrEnum):
    """Something a member does in a study; the value says it in a refusal ("… can log calls")."""

    LOG_CALL = "log calls"
    ADD_LEAD = "add leads"
    WORK_QUEUE = "work a queue of leads"
    ASSIGN_LEAD = "assign leads"
    OWN_LEAD = "own leads"
    SET_WAIT_REASON = "set wait reasons"
    CHANGE_CALLBACK = "change this callback"
    DECIDE_REFERRAL = "approve or reject referrals"
    ADVANCE_REFERRAL = "update referrals"
    VIEW_REFERRALS = "list referrals"
    VIEW_CANDIDATE = "see candidates"
    VIEW_PHI = "see candidates' names and phone numbers"
    ADD_NOTE = "add notes to candidates"
    FIND_CANDIDATE = "search candidates"
    VIEW_STATS = "see stats"
    VIEW_CALENDAR = "see your calendar"
    PLACE_CALL = "call candidates from Slack"
    SEND_TEXT = "text candidates"
    CHANGE_TEXT_CONSENT = "change a candidate's consent to texts"
    DELEGATE_APPROVALS = "hand their approvals to a delegate"


# THE policy: each action and the roles allowed to do it. Nothing else decides.
POLICY: dict[Action, tuple[str, ...]] = {
    Action.LOG_CALL: (COORDINATOR, ADMIN),
    Action.ADD_LEAD: (COORDINATOR, ADMIN),
    Action.WORK_QUEUE: (COORDINATOR, ADMIN),
    Action.ASSIGN_LEAD: (COORDINATOR, APPROVER, ADMIN),
    Action.OWN_LEAD: (COORDINATOR,),
    Action.SET_WAIT_REASON: (COORDINATOR, APPROVER, ADMIN),
    Action.CHANGE_CALLBACK: (COORDINATOR, ADMIN),
    Action.DECIDE_REFERRAL: (APPROVER, ADMIN),
    Action.ADVANCE_REFERRAL: (COORDINATOR, APPROVER, ADMIN),
    Action.VIEW_REFERRALS: ROLES,
    Action.VIEW_CANDIDATE: ROLES,
    Action.VIEW_PHI: (COORDINATOR, APPROVER, ADMIN),
    Action.ADD_NOTE: (COORDINATOR, APPROVER, ADMIN),
    Action.FIND_CANDIDATE: (COORDINATOR, APPROVER, ADMIN),
    Action.VIEW_STATS: ROLES,
    Action.VIEW_CALENDAR: ROLES,
    Action.PLACE_CALL: (COORDINATOR, ADMIN),
    Action.SEND_TEXT: (COORDINATOR, ADMIN),
    Action.CHANGE_TEXT_CONSENT: (COORDINATOR, ADMIN),
    Action.DELEGATE_APPROVALS: (APPROVER, ADMIN),
}

DELEGATE = "delegate"  # the role recorded for someone deciding in an approver's place

ASK = "Ask your admin to add you."


def allows(role: str | None, action: Action) -> bool:
    return role is not None and role in POLICY[action]


def _a(role: str) -> str:
    return f"an {role}" if role[:1] in "aeiou" else f"a {role}"


def _who(action: Action) -> str:
    roles = [f"{r}s" for r in POLICY[action]]
    return roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} or {roles[-1]}"


def refusal_text(study_key: str, role: str | None, action: Action) -> str:
    """The one wording of "no" for a study: not a member, or a member whose role may not."""
    if role is None:
        return f"You are not a member of {study_key}. {ASK}"
    return f"Only {_who(action)} of {study_key} can {action.value}; you are {_a(role)}."


def nowhere_text(roles: list[tuple[str, str]], action: Action) -> str:
    """The same "no" when no study was named: `roles` are the user's (study key, role) pairs."""
    if not roles and set(POLICY[action]) == set(ROLES):
        return f"You are not a member of any study yet. {ASK}"
    if not roles:
        return (f"Only {_who(action)} of a study can {action.value}; you are not a member of any "
                f"study yet. {ASK}")
    mine = ", ".join(f"{_a(role)} of {key}" for key, role in roles)
    return f"Only {_who(action)} of a study can {action.value}; you are {mine}."


def role_of(session: Session, user_id: str, study: Study) -> str | None:
    """The user's role in the study now; None for a non-member or a deactivated member."""
    return study_repo.role_in(session, user_id, study.id)


def may(session: Session, user_id: str, study: Study, action: Action) -> bool:
    return allows(role_of(session, user_id, study), action)


def require_role(session: Session, user_id: str, study: Study, action: Action) -> str:
    """The user's role in `study`, or NotAllowed in the one wording when the policy says no."""
    role = role_of(session, user_id, study)
    if not allows(role, action):
        raise NotAllowed(refusal_text(study.key, role, action))
    assert role is not None
    return role


def studies_where(session: Session, user_id: str, action: Action) -> list[Study]:
    """The active studies where the user may do `action`, by key."""
    return [s for s, role in study_repo.studies_for(session, user_id) if allows(role, action)]


def require_somewhere(session: Session, user_id: str, action: Action) -> list[Study]:
    """`studies_where`, or NotAllowed in the one wording when there is none."""
    pairs = study_repo.studies_for(session, user_id)
    allowed = [s for s, role in pairs if allows(role, action)]
    if not allowed:
        raise NotAllowed(nowhere_text([(s.key, r) for s, r in pairs], action))
    return allowed


def page_refusal_text(roles: list[tuple[str, str]]) -> str:
    """Why the secure page (identifiers) is closed to someone with these (study key, role)."""
    if not roles:
        return f"You are not a member of any study. {ASK}"
    mine = " and ".join(f"{_a(role)} of {key}" for key, role in roles)
    allowed = [f"{r}s" for r in POLICY[Action.VIEW_PHI]]
    who = f"{', '.join(allowed[:-1])} and {allowed[-1]}"
    return f"You are {mine}: contact cards are for {who}."


def require_page_access(session: Session, user_id: str) -> list[Study]:
    """The secure page's gate: the active studies where the user may see identifiers
    (Action.VIEW_PHI), or NotAllowed saying why not. Asked again on every request."""
    pairs = study_repo.studies_for(session, user_id)
    allowed = [s for s, role in pairs if allows(role, Action.VIEW_PHI)]
    if not allowed:
        raise NotAllowed(page_refusal_text([(s.key, r) for s, r in pairs]))
    return allowed


# ----- deciding on a referral: who, in whose place, and the two-person rule -------------------

def require_decider(session: Session, user_id: str, study: Study, now: dt.datetime
                    ) -> tuple[str, str | None]:
    """(role, on behalf of) for someone deciding a referral of `study` now: an approver or admin
    decides as themselves; otherwise a delegation in force (not expired, not cancelled) lets them
    decide in that approver's place, while the approver may still decide. NotAllowed otherwise."""
    role = role_of(session, user_id, study)
    if allows(role, Action.DECIDE_REFERRAL):
        assert role is not None
        return role, None
    for d in approvals_repo.acting_for(session, study.id, user_id, now):
        if may(session, d.approver, study, Action.DECIDE_REFERRAL):
            return DELEGATE, d.approver
    raise NotAllowed(refusal_text(study.key, role, Action.DECIDE_REFERRAL))


def independence_refusal(ref: str, who_can: list[str]) -> str:
    if who_can:
        names = ", ".join(f"<@{u}>" for u in who_can)
        return f"Only an approver who did not log this call can approve {ref}: {names}."
    return (f"Only an approver who did not log this call can approve {ref}, and there is none "
            f"in the study yet. Ask your admin to add one.")


def require_independent(actor: str, on_behalf_of: str | None, involved: set[str], ref: str,
                        who_can: list[str]) -> None:
    """Separation of duties: whoever logged the qualifying call, or coordinates or owns the
    referral (`involved`), may not approve it, whatever their role, nor may a delegate approve
    in their place."""
    if actor in involved or (on_behalf_of is not None and on_behalf_of in involved):
        raise NotAllowed(independence_refusal(ref, who_can))


def require_second_person(actor: str, on_behalf_of: str | None, earlier: list[tuple[str, str | None]],
                          ref: str, needed: int) -> None:
    """The two-person rule: each approval of a referral comes from a different person (an
    approver and their delegate count as one)."""
    mine = {actor} | ({on_behalf_of} if on_behalf_of else set())
    for who, for_whom in earlier:
        if mine & ({who} | ({for_whom} if for_whom else set())):
            raise NotAllowed(f"You already approved {ref} ({len(earlier)} of {needed}). A "
                             "different approver gives the next approval.")
