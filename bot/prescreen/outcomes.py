"""Call outcome codes (design.md §3) and what each means for the candidate."""

from __future__ import annotations

from dataclasses import dataclass

from storage.vocabulary import UNANSWERED_OUTCOMES


@dataclass(frozen=True)
class Outcome:
    code: str
    label: str
    reached: bool  # did we speak with the candidate?
    status: str  # candidate status afterwards


OUTCOMES: dict[str, Outcome] = {
    o.code: o
    for o in (
        Outcome("pre_qualified", "Pre-qualified", True, "referred"),
        Outcome("disqualified", "Disqualified", True, "disqualified"),
        Outcome("callback_requested", "Callback requested", True, "callback"),
        Outcome("considering", "Considering", True, "considering"),
        Outcome("no_answer", "No answer", False, "needs_call"),
        Outcome("left_voicemail", "Left voicemail", False, "needs_call"),
        Outcome("not_interested", "Not interested", True, "not_interested"),
        Outcome("wrong_number", "Wrong number", False, "wrong_number"),
        Outcome("do_not_call", "Do not call", True, "do_not_call"),
    )
}

UNANSWERED = UNANSWERED_OUTCOMES
# Outcomes for which the questionnaire was (or could have been) gone through.
SCREENED = ("pre_qualified", "disqualified", "considering", "callback_requested")

STATUS_LABELS = {
    "new": "new",
    "needs_call": "needs another attempt",
    "callback": "callback scheduled",
    "considering": "considering",
    "referred": "referred",
    "disqualified": "disqualified",
    "not_interested": "not interested",
    "wrong_number": "wrong number",
    "do_not_call": "do not call",
    "unreachable": "unreachable",
}


def label(code: str | None) -> str:
    if code is None:
        return "—"
    o = OUTCOMES.get(code)
    return o.label if o else code.replace("_", " ")
