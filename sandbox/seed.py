"""Demo candidates for the sandbox, created through the real workflows (never raw inserts).

Twenty fictional candidates across ALZ and MDD at various stages: approvals waiting, referrals
at several states, disqualified and unanswered calls, and callbacks due within minutes so that
moving the console clock forward 15 minutes brings a reminder DM. Then six new leads (status
needs_call, with a source) added the way `/prescreen lead` adds them: four handed to a
coordinator by the lead, two left for the assignment job, two of them four days old so they are
past the first-contact SLA. `/prescreen next`, `/prescreen queue` and App Home "My queue" have
something to show. Every name is invented.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from bot.callbacks.service import remind_lead, schedule_callback
from bot.clock import Clock
from bot.context import AppContext
from bot.leads import service as leads
from bot.leads.intake import OTHER_SOURCE, InboundLead, add_lead
from bot.prescreen.workflow import CallInput, NewCandidateInput, log_call
from bot.referrals import workflow as referrals
from storage.models import Study
from storage.repositories import candidates as cand_repo
from storage.repositories import members as members_repo
from storage.repositories import studies as study_repo

CASEY = "U0COORD01"
SAM = "U0COORD02"
LEE = "U0LEAD001"

ALZ_YES = {"age": "67", "dx": "no", "region": "NE"}
ALZ_NO = {"age": "45", "dx": "no", "region": "NE"}
MDD_YES = {"age": "41", "on_ssri": "yes", "last_episode": "2025-06-01"}
MDD_NO = {"age": "70", "on_ssri": "yes", "last_episode": "2025-06-01"}


@dataclass(frozen=True)
class DemoCandidate:
    name: str
    study: str
    coordinator: str
    outcome: str
    answers: dict[str, str] = field(default_factory=dict)
    # what happens next: referral steps (approve, reject, or states), or a callback in minutes
    then: tuple[str, ...] = ()
    callback_in_minutes: int | None = None


DEMO: list[DemoCandidate] = [
    DemoCandidate("Rowan Thistlewood", "ALZ", CASEY, "pre_qualified", ALZ_YES),
    DemoCandidate("Marigold Pennyworth", "ALZ", SAM, "pre_qualified", ALZ_YES),
    DemoCandidate("Ignatius Fernsby", "ALZ", CASEY, "pre_qualified", ALZ_YES),
    DemoCandidate("Odessa Brambleton", "ALZ", CASEY, "pre_qualified", ALZ_YES, ("approve",)),
    DemoCandidate("Cornelius Ashgrove", "ALZ", SAM, "pre_qualified", ALZ_YES,
                  ("approve", "site_contacted")),
    DemoCandidate("Philippa Quenby", "ALZ", CASEY, "pre_qualified", ALZ_YES, ("reject",)),
    DemoCandidate("Barnaby Whitlock", "ALZ", SAM, "disqualified", ALZ_NO),
    DemoCandidate("Henrietta Lowmoor", "ALZ", CASEY, "pre_qualified", ALZ_NO),
    DemoCandidate("Tobias Wrenfield", "ALZ", CASEY, "no_answer"),
    DemoCandidate("Clementine Harrowgate", "ALZ", SAM, "left_voicemail"),
    DemoCandidate("Ambrose Kettleby", "ALZ", CASEY, "considering", ALZ_YES, callback_in_minutes=10),
    DemoCandidate("Lavinia Crossley", "ALZ", SAM, "considering", ALZ_YES, callback_in_minutes=150),
    DemoCandidate("Percival Dunmore", "ALZ", CASEY, "not_interested"),
    DemoCandidate("Winifred Oakhurst", "ALZ", SAM, "considering", ALZ_YES, callback_in_minutes=24 * 60),
    DemoCandidate("Ezekiel Marchbank", "MDD", SAM, "pre_qualified", MDD_YES),
    DemoCandidate("Seraphina Coldwell", "MDD", CASEY, "pre_qualified", MDD_YES, ("site_contacted",)),
    DemoCandidate("Leopold Fairweather", "MDD", SAM, "disqualified", MDD_NO),
    DemoCandidate("Georgiana Pemberly", "MDD", SAM, "considering", MDD_YES, callback_in_minutes=12),
    DemoCandidate("Octavius Brightwater", "MDD", CASEY, "wrong_number"),
    DemoCandidate("Rosalind Ivesdale", "MDD", CASEY, "do_not_call"),
]



@dataclass(frozen=True)
class DemoLead:
    name: str
    study: str
    source: str  # one of the study's lead_sources in demo.yaml
    state: str
    owner: str | None = None  # None: the assignment job shares it out
    days_old: int = 0


DEMO_LEADS: list[DemoLead] = [
    DemoLead("Augustina Pellworth", "ALZ", "web-ads", "MA", CASEY, days_old=4),
    DemoLead("Horatio Quillby", "ALZ", "memory-screening", "MA", CASEY),
    DemoLead("Clarabel Winterbourne", "ALZ", "physician", "MA", SAM),
    DemoLead("Fitzgerald Ormsby", "ALZ", "web-ads", "MA"),
    DemoLead("Millicent Draycott", "MDD", "web-ads", "IL", SAM, days_old=4),
    DemoLead("Jasper Thornbury", "MDD", "physician", "IL"),
]

# Names in the demo, for privacy checks: none of them may appear in a channel.
DEMO_NAMES = [c.name for c in DEMO] + [lead.name for lead in DEMO_LEADS]


def has_candidates(ctx: AppContext) -> bool:
    with ctx.db.session() as s:
        return members_repo.population(s)["candidates"] > 0


def _phone(i: int) -> str:
    return f"(617) 555-{100 + i:04d}"


def _dob(i: int, answers: dict[str, str]) -> dt.date:
    """A birth date that matches the age answered (or about 60 when none was asked)."""
    age = int(answers.get("age") or 60)
    return dt.date(2026 - age - 1, 1 + i % 12, 1 + (i * 3) % 27)


def seed_demo(ctx: AppContext) -> int:
    """Create the demo candidates; returns how many. Call on a database with the demo studies."""
    made = 0
    for i, demo in enumerate(DEMO, start=1):
        region = "MA" if demo.study == "ALZ" else "IL"
        existing, new = None, None
        if ctx.settings.portal:  # added the way the secure page adds a candidate, then called
            existing = add_lead(ctx, InboundLead(
                study_key=demo.study, user_id=demo.coordinator, name=demo.name, phone=_phone(i),
                dob=_dob(i, demo.answers), state=region, source=OTHER_SOURCE, consent=True,
                idempotency_key=f"sandbox-demo-candidate-{i}")).ref
        else:
            new = NewCandidateInput(name=demo.name, phone=_phone(i), dob=_dob(i, demo.answers),
                                    region=region, timezone=None, consent=True)
        logged = log_call(ctx, CallInput(
            study_key=demo.study,
            coordinator=demo.coordinator,
            outcome=demo.outcome,
            existing_ref=existing,
            new=new,
            raw_answers=dict(demo.answers),
            idempotency_key=f"sandbox-demo-{i}",
        ))
        made += 1
        for step in demo.then:
            _referral_step(ctx, logged.referral_id, step)
        if demo.callback_in_minutes is not None:
            _callback(ctx, logged.ref, demo.coordinator, demo.callback_in_minutes)
    return made + seed_leads(ctx)


class _Earlier:
    """The sandbox clock moved back, to add a lead as if it came in days ago."""

    def __init__(self, clock: Clock, delta: dt.timedelta) -> None:
        self.clock, self.delta = clock, delta

    def now(self) -> dt.datetime:
        return self.clock.now() - self.delta


def seed_leads(ctx: AppContext) -> int:
    """The demo leads, through the `/prescreen lead` workflow; the owned ones are assigned by
    the lead with `/prescreen assign`. Returns how many."""
    for i, lead in enumerate(DEMO_LEADS, start=1):
        at = replace(ctx, clock=_Earlier(ctx.clock, dt.timedelta(days=lead.days_old)))
        added = add_lead(at, InboundLead(
            study_key=lead.study, user_id=CASEY, name=lead.name,
            phone=f"({'617' if lead.study == 'ALZ' else '312'}) 555-{130 + i:04d}",
            dob=None, state=lead.state, source=lead.source, consent=True,
            idempotency_key=f"sandbox-lead-{i}"))
        if lead.owner is not None:
            leads.assign(ctx, actor=LEE, ref=added.ref, target=f"<@{lead.owner}>")
    return len(DEMO_LEADS)


def _referral_step(ctx: AppContext, referral_id: int | None, step: str) -> None:
    if referral_id is None:
        return
    if step == "approve":
        referrals.decide(ctx, referral_id=referral_id, actor=LEE, approve=True, expected_version=None)
    elif step == "reject":
        referrals.decide(ctx, referral_id=referral_id, actor=LEE, approve=False,
                         expected_version=None, reason="needs_records")
    else:
        referrals.advance(ctx, actor=LEE, to_state=step, referral_id=referral_id)


def _callback(ctx: AppContext, ref: str, owner_id: str, minutes: int) -> None:
    """A callback whose reminder is due in ``minutes`` (the due time is the reminder lead later)."""
    now = ctx.clock.now()
    with ctx.db.session() as s:
        candidate = cand_repo.by_ref(s, ref, for_update=True)
        owner = study_repo.get_member(s, owner_id)
        assert candidate is not None and owner is not None
        study = s.get(Study, candidate.study_id)
        assert study is not None
        due = now + remind_lead(ctx) + dt.timedelta(minutes=minutes)
        schedule_callback(ctx, s, candidate=candidate, study=study, owner=owner,
                          due_at=due.replace(second=0, microsecond=0), call=None, actor="sandbox",
                          kind="requested")


def demo_summary(ctx: AppContext) -> dict[str, Any]:
    with ctx.db.session() as s:
        return members_repo.population(s)
