"""Why a lead waits. A coordinator may set one (`/prescreen reason`); otherwise it is derived
from the lead's state so every waiting item carries a reason."""

from __future__ import annotations

from storage.vocabulary import UNANSWERED_OUTCOMES

REASONS: dict[str, str] = {
    "no_response": "no response",
    "waiting_on_records": "waiting on records",
    "scheduling_conflict": "scheduling conflict",
    "needs_review": "needs review",
    "likely_not_a_fit": "likely not a fit",
}
CLEAR_WORDS = ("none", "clear", "-")


def label(code: str | None) -> str:
    if code is None:
        return "not contacted yet"
    return REASONS.get(code, code.replace("_", " "))


def parse(text: str) -> str | None:
    """The reason code for what the user typed ("waiting on records", "waiting_on_records"),
    None for a clear word; raises ValueError for anything else."""
    word = text.strip().lower().replace("-", "_").replace(" ", "_")
    if text.strip().lower() in CLEAR_WORDS:
        return None
    if word in REASONS:
        return word
    raise ValueError(text)


def choices_text() -> str:
    return ", ".join(f"`{code}`" for code in REASONS)


def derive(*, set_reason: str | None, attempts: int, last_outcome: str | None,
           referral_state: str | None) -> str | None:
    """The reason shown: the one set by a person, else one implied by the state; None for a
    lead nobody has called yet."""
    if set_reason:
        return set_reason
    if referral_state == "pending_approval":
        return "needs_review"
    if referral_state in ("approved", "sent_to_site"):
        return "waiting_on_records" if referral_state == "approved" else "no_response"
    if referral_state == "site_contacted":
        return "scheduling_conflict"
    if attempts > 0 and (last_outcome in UNANSWERED_OUTCOMES or last_outcome is None):
        return "no_response"
    if last_outcome in ("considering", "callback_requested"):
        return "scheduling_conflict"
    return None if attempts == 0 else "no_response"
