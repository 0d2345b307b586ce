"""Consent to text, changed from the contact card. A number that texted STOP cannot be opted back
in here: only the candidate can, by texting START. Audited without identifiers."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.access import Action, require_role
from bot.candidates.card import unknown
from bot.context import AppContext
from bot.forms import FormErrors
from bot.prescreen.queries import is_ref
from storage import audit
from storage.repositories import candidates as cand_repo
from storage.repositories import ringcentral as rc_repo
from storage.repositories import studies as study_repo

VIA = "contact card"


@dataclass(frozen=True)
class TextConsentChanged:
    ref: str
    consent_to_text: bool
    changed: bool  # False when it already was so


def set_consent_to_text(ctx: AppContext, user_id: str, ref: str,
                        consent: bool) -> TextConsentChanged:
    """Record the candidate's consent to texts. FormErrors({"consent_to_text": …}) when the number
    texted STOP and consent is being given; UnknownCandidate / NotAllowed as the card."""
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref) if is_ref(ref) else None
        if cand is None:
            raise unknown(ref, [s.key for s, _ in study_repo.studies_for(session, user_id)])
        require_role(session, user_id, cand.study, Action.CHANGE_TEXT_CONSENT)
        before = bool(cand.consent_to_text)
        if consent:
            stop = rc_repo.opted_out(session, ctx.cipher.indexes(ctx.cipher.decrypt(cand.phone_enc)))
            if stop is not None:
                tz = study_repo.member_timezone(session, user_id) or "UTC"
                day = stop.at.astimezone(ZoneInfo(tz))
                raise FormErrors({"consent_to_text": (
                    f"This number texted STOP on {day:%a %d %b %Y}; it can only opt back in by "
                    "texting START.")})
        if before == consent:
            return TextConsentChanged(cand.ref_code, consent, changed=False)
        cand.consent_to_text = consent
        cand.updated_at = ctx.clock.now()
        audit.record(session, actor=user_id, action="candidate.consent_to_text_changed",
                     entity="candidate", entity_id=cand.ref_code,
                     before={"consent_to_text": before},
                     after={"consent_to_text": consent, "via": VIA})
        return TextConsentChanged(cand.ref_code, consent, changed=True)
