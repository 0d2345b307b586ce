"""Who gets each new lead. Unowned `needs_call` leads of a study go to its active coordinators,
by the study's `assignment:` strategy:

- `least_loaded` (default): the coordinator with the fewest open items in the study; ties go
  round robin (the next one after whoever got the last lead).
- `round_robin`: strictly in turn.

When Microsoft Graph is configured, coordinators outside working hours (Mon–Fri 09:00–17:00
their time) or with an out-of-office event in the calendar cache are skipped; when nobody is
available, everyone is eligible again and the job summary says so.

Safe with several workers: the study row is locked while its leads are shared out, leads are
selected with SKIP LOCKED on PostgreSQL and claimed with UPDATE … WHERE owner_id IS NULL.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot import outbox, secure_links
from bot.context import AppContext
from bot.leads.business_time import SlaConfig, in_business_hours
from storage import audit
from storage.models import Member, Study
from storage.repositories import calendar as cal_repo
from storage.repositories import queue as repo
from storage.repositories import studies as study_repo
from storage.vocabulary import ASSIGNMENT_STRATEGIES

BATCH = 500
DM_REFS = 5


@dataclass
class AssignmentResult:
    assigned: dict[str, list[str]] = field(default_factory=dict)  # slack id -> refs
    fallback_studies: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.assigned.values())

    def summary(self) -> str:
        if not self.total:
            return ""
        text = f"{self.total} leads assigned to {len(self.assigned)} coordinators"
        if self.fallback_studies:
            text += (f"; nobody available in {', '.join(sorted(set(self.fallback_studies)))}, "
                     "so all coordinators were eligible")
        return text


def strategy(study: Study) -> str:
    value = (study.options or {}).get("assignment", "least_loaded")
    return value if value in ASSIGNMENT_STRATEGIES else "least_loaded"


def is_available(ctx: AppContext, session: Session, member: Member, study: Study,
                 now: dt.datetime) -> bool:
    """Inside working hours and not out of office. Always True without Graph."""
    if ctx.graph is None:
        return True
    cfg = SlaConfig.for_study(study.timezone, None)  # Graph working hours: Mon–Fri 09:00–17:00
    if not in_business_hours(cfg, member.timezone, now):
        return False
    if not member.mailbox:
        return True
    events = cal_repo.events_between(session, member.mailbox, now, now + dt.timedelta(minutes=1),
                                     timezone=member.timezone)
    return not any(e.show_as == "oof" for e in events)


def pick(order: list[int], load: dict[int, int], last: int | None, how: str) -> int:
    """The next assignee among `order` (member ids, stable order)."""
    start = (order.index(last) + 1) % len(order) if last in order else 0
    rotation = order[start:] + order[:start]
    if how == "round_robin":
        return rotation[0]
    return min(rotation, key=lambda mid: load[mid])  # min keeps the first of equals: round robin


def assign_study(ctx: AppContext, session: Session, study: Study, now: dt.datetime,
                 result: AssignmentResult, batch: int = BATCH) -> int:
    coordinators = [m for m in study_repo.members_with_role(session, study.id, "coordinator")]
    if not coordinators:
        return 0
    available = [m for m in coordinators if is_available(ctx, session, m, study, now)]
    if not available:
        available = coordinators
        result.fallback_studies.append(study.key)
    lead_ids = repo.unowned_leads(session, study.id, batch)
    if not lead_ids:
        return 0
    order = [m.id for m in available]
    load = repo.open_load(session, study.id, order)
    last = repo.last_assignee(session, study.id)
    how = strategy(study)
    plan: dict[int, list[int]] = defaultdict(list)
    for lead_id in lead_ids:
        mid = pick(order, load, last, how)
        plan[mid].append(lead_id)
        load[mid] += 1
        last = mid
    by_id = {m.id: m for m in available}
    messages: list[outbox.Message] = []
    events: list[dict[str, Any]] = []
    won_total = 0
    # claim in plan order so the most recent assignment (for the next round robin) is right
    for mid, ids in plan.items():
        won = repo.claim_leads(session, ids, mid, now)
        if not won:
            continue
        won_total += len(won)
        member = by_id[mid]
        refs = repo.refs(session, won)
        result.assigned.setdefault(member.slack_user_id, []).extend(refs)
        events += [{"actor": "scheduler", "action": "lead.assigned", "entity": "candidate",
                    "entity_id": ref, "after": {"owner": member.slack_user_id, "strategy": how}}
                   for ref in refs]
        messages.append(_dm(ctx, study, member, refs, won))
    if plan:
        _stamp_last(session, plan, lead_ids, now)
    outbox.post_many(ctx, session, messages, now=now)
    audit.record_many(session, events)
    return won_total


def _stamp_last(session: Session, plan: dict[int, list[int]], lead_ids: list[int],
                now: dt.datetime) -> None:
    """Give the lead assigned last a slightly later assigned_at so the next run continues the
    rotation from its owner."""
    repo.nudge_assigned_at(session, lead_ids[-1], now + dt.timedelta(microseconds=1))


def _dm(ctx: AppContext, study: Study, member: Member, refs: list[str], ids: list[int]
        ) -> outbox.Message:
    shown = ", ".join(refs[:DM_REFS]) + (f" and {len(refs) - DM_REFS} more" if len(refs) > DM_REFS
                                         else "")
    n = len(refs)
    text = (f"{n} new {study.key} lead{'s' if n != 1 else ''} assigned to you · {shown}. "
            "Type `/prescreen next` for the most urgent one.")
    blocks = None
    if ctx.settings.portal:  # the numbers to call are on each lead's contact card
        links = " · ".join(f"<{secure_links.contact_card_url(ctx.settings, ref)}|{ref}>"
                           for ref in refs[:DM_REFS])
        blocks = [bk.section(text), bk.context(f"Open contact card: {links}")]
    return outbox.Message(key=f"lead-assign:{study.key}:{member.id}:{min(ids)}-{max(ids)}:{n}",
                          kind="lead_assigned", channel=member.slack_user_id, text=text,
                          blocks=blocks, study_key=study.key)


def assign_pending(ctx: AppContext, batch: int = BATCH) -> AssignmentResult:
    result = AssignmentResult()
    with ctx.db.session() as session:
        study_ids = repo.studies_with_unowned_leads(session)
    for study_id in study_ids:
        while True:
            now = ctx.clock.now()
            with ctx.db.session() as session:
                # one assigner per study at a time
                study = study_repo.lock_active(session, study_id)
                if study is None:
                    break
                n = assign_study(ctx, session, study, now, result, batch)
            if n < batch:
                break
    return result


def assignment_job(ctx: AppContext) -> str:
    return assign_pending(ctx).summary()
