"""`/prescreen assign REF @someone` and `/prescreen reason REF REASON`: authorised, audited, and
announced to the new owner by DM (reference code only)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot import outbox
from bot.access import Action, may, require_role
from bot.context import AppContext
from bot.errors import DomainError, UnknownCandidate
from bot.leads import reasons
from storage import audit
from storage.models import Candidate
from storage.repositories import callbacks as cb_repo
from storage.repositories import candidates as cand_repo
from storage.repositories import studies as study_repo

# Slack escapes mentions in slash commands (manifest: should_escape) as <@U123|name> or <@U123>
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def parse_mention(text: str) -> str:
    match = MENTION.match(text.strip())
    if match:
        return match.group(1)
    raise DomainError(f"I can't tell who {bk.code_word(text, 'that')} is. Mention them: type @ "
                      "and pick the person from the list, like `/prescreen assign MDD-0042 @sam`.")


def _candidate(session: Session, ref: str, actor: str, action: Action) -> Candidate:
    cand = cand_repo.by_ref(session, ref, for_update=True)
    if cand is None:
        raise UnknownCandidate(f"No candidate {bk.echo_ref(ref)}. Check the code; `/prescreen queue` "
                               "lists yours.")
    require_role(session, actor, cand.study, action)
    return cand


@dataclass
class Assigned:
    message: str


def assign(ctx: AppContext, *, actor: str, ref: str, target: str) -> Assigned:
    user_id = parse_mention(target)
    now = ctx.clock.now()
    with ctx.db.session() as session:
        cand = _candidate(session, ref, actor, Action.ASSIGN_LEAD)
        study = cand.study
        member = study_repo.get_member(session, user_id)
        if member is None or not may(session, user_id, study, Action.OWN_LEAD):
            raise DomainError(f"<@{user_id}> is not a {study.key} coordinator. Pick a coordinator "
                              f"of {study.key}.")
        if cand.owner_id == member.id:
            return Assigned(f"{cand.ref_code} is already <@{user_id}>'s.")
        previous = cand.owner.slack_user_id if cand.owner else None
        cand.owner_id = member.id
        cand.assigned_at = now
        moved = 0
        for cb in cb_repo.open_for_candidate(session, cand.id):
            cb.owner_id = member.id
            cb.version += 1
            moved += 1
        audit.record(session, actor=actor, action="lead.assigned", entity="candidate",
                     entity_id=cand.ref_code, before={"owner": previous},
                     after={"owner": user_id, "callbacks_moved": moved})
        if user_id != actor:
            outbox.post(ctx, session, key=f"lead-assign:{cand.ref_code}:{user_id}:{now.isoformat()}",
                        kind="lead_assigned", channel=user_id, study_key=study.key,
                        text=(f"<@{actor}> assigned {cand.ref_code} ({study.key}) to you. "
                              "Type `/prescreen next` when you're ready to call."))
        extra = " Its open callback moved too." if moved else ""
        was = f" (was <@{previous}>)" if previous else ""
        return Assigned(f":bust_in_silhouette: {cand.ref_code} is now <@{user_id}>'s{was}.{extra}")


def set_reason(ctx: AppContext, *, actor: str, ref: str, text: str) -> str:
    try:
        code = reasons.parse(text)
    except ValueError:
        raise DomainError(f"{bk.code_word(text)} is not a wait reason. Use one of {reasons.choices_text()}, "
                          "or `clear`.") from None
    with ctx.db.session() as session:
        cand = _candidate(session, ref, actor, Action.SET_WAIT_REASON)
        before = cand.wait_reason
        cand.wait_reason = code
        audit.record(session, actor=actor, action="lead.wait_reason", entity="candidate",
                     entity_id=cand.ref_code, before={"wait_reason": before},
                     after={"wait_reason": code})
        if code is None:
            return f"{cand.ref_code}: reason cleared; it now shows the reason implied by its state."
        return f"{cand.ref_code} waits: {reasons.label(code)}."
