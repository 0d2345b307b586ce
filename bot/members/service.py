"""Revoking access: deactivate or reactivate a member (CLI), and the Slack workspace's own
deactivation (the `user_change` event). A deactivated member holds no role, so every role check
(`require_role`, `role_in`, `studies_for`, `get_member`) refuses them on their next action."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from bot.context import AppContext
from bot.errors import DomainError
from storage.db import Database
from storage.repositories import members as repo

log = logging.getLogger("prescreen.members")

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
SLACK_ACTOR = "slack:user_change"


class UnknownMember(DomainError):
    pass


@dataclass
class MemberRow:
    slack_id: str
    email: str | None
    active: bool
    roles: dict[str, str]
    deactivated: str | None = None  # when and by whom, from the audit trail


@dataclass
class Deactivation:
    slack_id: str
    roles: dict[str, str] = field(default_factory=dict)
    already: bool = False
    open_leads: list[str] = field(default_factory=list)
    open_callbacks: list[str] = field(default_factory=list)


def _member(session: Any, slack_id: str) -> Any:
    slack_id = slack_id.strip().upper()
    if not SLACK_USER_ID.match(slack_id):
        raise UnknownMember(f"{slack_id or '(empty)'} is not a Slack user id like U0123ABCD.")
    member = repo.find(session, slack_id)
    if member is None:
        raise UnknownMember(f"No member {slack_id}. `prescreen-bot members list` shows them.")
    return member


def list_members(db: Database) -> list[MemberRow]:
    with db.session() as session:
        return [MemberRow(m.slack_user_id, m.email, m.active, repo.roles_of(m),
                          None if m.active else repo.last_change(session, m.slack_user_id))
                for m in repo.list_all(session)]


def deactivate(db: Database, slack_id: str, *, actor: str, reason: str) -> Deactivation:
    """Every role and all access gone at once; audited. UnknownMember for a wrong id."""
    with db.session() as session:
        member = _member(session, slack_id)
        result = Deactivation(member.slack_user_id, already=not member.active)
        result.roles = repo.deactivate(session, member, actor=actor, reason=reason)
        result.open_leads, result.open_callbacks = repo.open_work(session, member.id)
        return result


def reactivate(db: Database, slack_id: str, *, actor: str, reason: str) -> bool:
    """Active again with no roles; False if the member was active. UnknownMember for a wrong id."""
    with db.session() as session:
        return repo.reactivate(session, _member(session, slack_id), actor=actor, reason=reason)


def on_slack_user_change(ctx: AppContext, user: dict[str, Any]) -> bool:
    """A `user_change` event. Slack sends it for any profile change; only `deleted: true` (the
    user was deactivated in the workspace) matters here. True if access was revoked now.
    Idempotent: a retry or a later change of a deactivated user changes nothing."""
    if user.get("deleted") is not True:
        return False
    slack_id = str(user.get("id") or "")
    with ctx.db.session() as session:
        member = repo.find(session, slack_id)
        if member is None or not member.active:
            return False
        repo.deactivate(session, member, actor=SLACK_ACTOR,
                        reason="deactivated in the Slack workspace")
    log.info("member %s deactivated in Slack: access revoked", slack_id)
    return True
