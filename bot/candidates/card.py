"""A candidate's contact card on the secure page: identifiers, calling window, notes. Only for
members whose role may see identifiers in the candidate's study; every view is audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot import regions
from bot.access import Action, allows, refusal_text
from bot.callbacks.windows import WindowNow, window_now
from bot.candidate_fields import age_on
from bot.context import AppContext
from bot.errors import NotAllowed, UnknownCandidate
from bot.leads.intake import lead_sources
from bot.phones import display_phone
from bot.prescreen.outcomes import label as outcome_label
from bot.prescreen.queries import is_ref, status_label
from storage import audit
from storage.repositories import callbacks as callback_repo
from storage.repositories import candidate_notes as notes_repo
from storage.repositories import candidates as cand_repo
from storage.repositories import ringcentral as rc_repo
from storage.repositories import studies as study_repo

VIA = "contact card"


@dataclass(frozen=True)
class NoteEntry:
    at: dt.datetime  # UTC
    author: str  # display name, else the Slack user id
    text: str  # PHI
    kind: str  # note | call
    outcome: str | None = None  # for a call's notes: the outcome's label


@dataclass(frozen=True)
class AttemptEntry:
    at: dt.datetime  # UTC
    outcome: str  # label
    by: str  # display name, else the Slack user id
    from_ringcentral: bool  # made by the call-log sync, not logged by hand


@dataclass(frozen=True)
class ContactCard:
    ref: str
    study_key: str
    study_title: str
    name: str
    phone: str  # E.164, for the tel: link
    phone_display: str  # "(617) 555-0123"
    dob: dt.date | None
    age: int | None
    state: str | None  # code
    state_name: str | None
    timezone: str
    window: WindowNow
    consent: bool
    do_not_call: bool
    status: str
    status_label: str
    attempts: int
    max_attempts: int
    last_outcome: str | None  # label
    next_callback: dt.datetime | None  # UTC
    source: str | None  # label
    owner: str | None
    notes: list[NoteEntry]
    viewer_tz: str
    may_add_note: bool
    consent_to_text: bool = False
    texted_stop_at: dt.datetime | None = None  # UTC; the number opted out of texts
    may_change_text_consent: bool = False
    attempt_list: tuple[AttemptEntry, ...] = ()  # newest first, the last ten

    @property
    def fields_shown(self) -> list[str]:
        """The identifier fields this card shows, as the audit event names them."""
        shown = ["name", "phone"]
        if self.dob is not None:
            shown.append("dob")
        if self.notes:
            shown.append("notes")
        return shown


def unknown(ref: str, mine: list[str]) -> UnknownCandidate:
    shown = ref.strip().upper()[:20]
    example = f"{mine[0] if mine else 'ALZ'}-0042"
    return UnknownCandidate(f"No candidate {shown}. Codes look like {example}; or search by "
                            "phone number or name.")


def contact_card(ctx: AppContext, user_id: str, ref: str) -> ContactCard:
    """The card, and a `phi.viewed` audit event naming the fields shown. UnknownCandidate or
    NotAllowed (in `/prescreen status`'s wording) otherwise, and nothing is audited as viewed."""
    now = ctx.clock.now()
    c = ctx.cipher
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref) if is_ref(ref) else None
        if cand is None:
            raise unknown(ref, [s.key for s, _ in study_repo.studies_for(session, user_id)])
        study = cand.study
        role = study_repo.role_in(session, user_id, cand.study_id)
        if not allows(role, Action.VIEW_PHI):
            raise NotAllowed(refusal_text(study.key, role, Action.VIEW_PHI))
        viewer_tz = study_repo.member_timezone(session, user_id) or "UTC"
        dob_text = c.decrypt_optional(cand.dob_enc)
        dob = dt.date.fromisoformat(dob_text) if dob_text else None
        local_today = now.astimezone(ZoneInfo(cand.timezone)).date()
        calls = callback_repo.call_times_since(session, cand.id, now - dt.timedelta(hours=24))
        nxt = cand_repo.next_callback(session, cand.id)
        phone = c.decrypt(cand.phone_enc)
        sources = lead_sources(study)
        source = cand.source
        if source and isinstance(sources.get(source), dict):
            source = str(sources[source].get("label") or source)
        owner = cand.owner
        stop = rc_repo.opted_out(session, c.indexes(phone))
        notes = [NoteEntry(n.at, n.author_name or n.author_slack_id, c.decrypt(n.text_enc), n.kind,
                           outcome_label(n.outcome) if n.kind == "call" else None)
                 for n in notes_repo.history(session, cand.id)]
        card = ContactCard(
            ref=cand.ref_code, study_key=study.key, study_title=study.title,
            name=c.decrypt(cand.name_enc), phone=phone, phone_display=display_phone(phone),
            dob=dob, age=age_on(dob, local_today) if dob else None,
            state=cand.region,
            state_name=regions.STATES[cand.region][0] if cand.region in regions.STATES else None,
            timezone=cand.timezone,
            window=window_now(study, cand.region, cand.timezone, now, calls),
            consent=cand.consent_to_contact, do_not_call=cand.do_not_call, status=cand.status,
            status_label=status_label(cand.status), attempts=cand.attempts,
            max_attempts=study.max_attempts,
            last_outcome=outcome_label(cand.last_outcome) if cand.last_outcome else None,
            next_callback=nxt.due_at if nxt else None, source=source,
            owner=(owner.display_name or owner.slack_user_id) if owner else None,
            notes=notes, viewer_tz=viewer_tz,
            may_add_note=allows(role, Action.ADD_NOTE),
            consent_to_text=bool(cand.consent_to_text),
            texted_stop_at=stop.at if stop is not None else None,
            may_change_text_consent=allows(role, Action.CHANGE_TEXT_CONSENT),
            attempt_list=tuple(
                AttemptEntry(a.at, outcome_label(a.outcome), a.author_name or a.author_slack_id,
                             a.from_ringcentral)
                for a in notes_repo.attempts(session, cand.id)))
        audit.record(session, actor=user_id, action="phi.viewed", entity="candidate",
                     entity_id=cand.ref_code, after={"fields": card.fields_shown, "via": VIA})
        return card
