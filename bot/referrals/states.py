"""The referral state machine: the one table of allowed transitions (design.md §3)."""

from __future__ import annotations

from bot import blocks as bk
from bot.errors import IllegalTransition

EXITS = ("withdrawn", "lost")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending_approval": ("approved", "rejected", *EXITS),
    "approved": ("sent_to_site", *EXITS),
    "sent_to_site": ("site_contacted", *EXITS),
    "site_contacted": ("visit_scheduled", *EXITS),
    "visit_scheduled": ("screened", *EXITS),
    "screened": ("enrolled", "screen_failed", *EXITS),
    "rejected": (),
    "enrolled": (),
    "screen_failed": (),
    "withdrawn": (),
    "lost": (),
}
ALL_STATES = tuple(TRANSITIONS)

LABELS = {
    "pending_approval": "pending approval",
    "approved": "approved",
    "rejected": "rejected",
    "sent_to_site": "sent to site",
    "site_contacted": "site contacted",
    "visit_scheduled": "visit scheduled",
    "screened": "screened",
    "enrolled": "enrolled",
    "screen_failed": "screen failed",
    "withdrawn": "withdrawn",
    "lost": "lost",
}

EMOJI = {
    "pending_approval": ":hourglass_flowing_sand:",
    "approved": ":white_check_mark:",
    "rejected": ":x:",
    "sent_to_site": ":outbox_tray:",
    "site_contacted": ":telephone_receiver:",
    "visit_scheduled": ":calendar:",
    "screened": ":clipboard:",
    "enrolled": ":tada:",
    "screen_failed": ":no_entry_sign:",
    "withdrawn": ":leftwards_arrow_with_hook:",
    "lost": ":grey_question:",
}


def label(state: str) -> str:
    return LABELS.get(state, state.replace("_", " "))


def check(ref: str, current: str, target: str) -> None:
    """Raise IllegalTransition (listing the allowed next states) unless current → target is allowed."""
    if target not in TRANSITIONS:
        raise IllegalTransition(
            f"{bk.code(target)} is not a referral state. States: {', '.join(ALL_STATES)}."
        )
    allowed = TRANSITIONS.get(current, ())
    if target not in allowed:
        if not allowed:
            raise IllegalTransition(f"{ref} is {label(current)}: that is final, nothing can follow.")
        raise IllegalTransition(
            f"{ref} is {label(current)}; it can go to: {', '.join(allowed)}."
        )
