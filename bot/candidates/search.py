"""Search candidates by phone or name on the secure page, within the studies where the member
may see identifiers (blind indexes; only the results are decrypted)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.access import Action
from bot.context import AppContext
from bot.errors import InvalidInput
from bot.prescreen.outcomes import STATUS_LABELS
from bot.prescreen.queries import find_candidates

HOW = "Type a phone number (at least 7 digits) or a full name, like 617 555 0123 or Jane Doe."


@dataclass(frozen=True)
class SearchHit:
    ref: str
    name: str  # PHI
    study_key: str
    status: str
    do_not_call: bool


def search_candidates(ctx: AppContext, user_id: str, query: str) -> list[SearchHit]:
    """InvalidInput (field "q") for a query too short or a phone number that is not one;
    NotAllowed when the user may see identifiers in no study. The audit keeps how the search
    was made and the result codes, never the query."""
    if len((query or "").strip()) < 3:
        raise InvalidInput(HOW, field="q")
    found = find_candidates(ctx, user_id, query, action=Action.VIEW_PHI, with_names=True,
                            via="secure page")
    return [SearchHit(f.ref, f.name or "", f.study_key, STATUS_LABELS.get(f.status, f.status),
                      f.do_not_call) for f in found]
