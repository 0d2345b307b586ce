"""Add a candidate on the secure page: the inbound-lead rules (bot.leads.intake.add_lead) with the
page's form token for idempotency."""

from __future__ import annotations

from dataclasses import dataclass

from bot.context import AppContext
from bot.leads.intake import OTHER_SOURCE, InboundLead, LeadAdded, add_lead, lead_form, lead_sources
from storage.models import Study

VIA = "secure page"


@dataclass(frozen=True)
class StudyChoice:
    key: str
    title: str
    sources: list[tuple[str, str]]  # (slug, label); "other" last


@dataclass(frozen=True)
class CandidateForm:
    studies: list[StudyChoice]  # where the user may add candidates
    study: StudyChoice | None  # the one the form is for (None: pick one first)


def _choice(study: Study) -> StudyChoice:
    sources = [(slug, str((cfg or {}).get("label") or slug))
               for slug, cfg in lead_sources(study).items()]
    return StudyChoice(study.key, study.title, [*sources, (OTHER_SOURCE, "Other")])


def candidate_form(ctx: AppContext, user_id: str, study_key: str | None) -> CandidateForm:
    """The add form for `study_key` (or the user's only study). NotAllowed or UnknownStudy when
    the user may not add candidates there, or anywhere."""
    form = lead_form(ctx, user_id, (study_key or "").strip() or None)
    choices = [_choice(s) for s in form.studies]
    return CandidateForm(choices, next((c for c in choices if c.key == form.study_key), None))


@dataclass(frozen=True)
class NewCandidate:
    user_id: str
    study_key: str
    name: str
    phone: str
    dob: str  # as typed: YYYY-MM-DD or MM/DD/YYYY, or empty
    state: str
    source: str
    consent: bool
    form_token: str  # one per rendered form: a second submit of it returns the first result
    consent_to_text: bool = False  # "Agreed to receive texts about this study"


def add_candidate(ctx: AppContext, inp: NewCandidate) -> LeadAdded:
    """Store the candidate or raise FormErrors (field → text; nothing stored) / a DomainError.
    Same fields, checks, duplicate and do-not-call rules as `/prescreen lead`."""
    token = inp.form_token.strip()[:80]
    return add_lead(ctx, InboundLead(
        study_key=inp.study_key.strip().upper(), user_id=inp.user_id, name=inp.name,
        phone=inp.phone, dob=None, dob_text=inp.dob, state=inp.state.strip() or None,
        source=inp.source.strip() or None, consent=inp.consent,
        consent_to_text=inp.consent_to_text,
        idempotency_key=f"page:add-candidate:{token}" if token else None, via=VIA))
