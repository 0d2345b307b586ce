"""Why a referral was rejected: each study's list of reasons (`reject_reasons` in the studies
file), or the defaults below. Only a code from the list is stored and shown; anything the
approver wants to add goes to the encrypted note."""

from __future__ import annotations

from storage.models import Study

DEFAULT_REJECT_REASONS: dict[str, str] = {
    "criteria_not_met": "Does not meet inclusion criteria",
    "needs_records": "Needs medical records first",
    "site_capacity": "Site at capacity",
    "travel": "Too far from the site",
    "duplicate": "Duplicate referral",
    "withdrew": "Candidate withdrew",
    "other": "Other (see note)",
}


def reject_reasons(study: Study) -> dict[str, str]:
    """code → label, in the order the study lists them."""
    configured = (study.options or {}).get("reject_reasons")
    if isinstance(configured, dict) and configured:
        return {str(k): str(v) for k, v in configured.items()}
    return dict(DEFAULT_REJECT_REASONS)


def reason_label(study: Study, code: str | None) -> str | None:
    """The label of a stored reason; a code no longer on the list (or stored before lists were
    checked) reads as itself, escaped by the view that shows it."""
    if not code:
        return None
    return reject_reasons(study).get(code) or DEFAULT_REJECT_REASONS.get(code) or code
