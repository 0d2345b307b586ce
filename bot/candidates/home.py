"""The secure page's home: the member's studies and what they may do in each."""

from __future__ import annotations

from dataclasses import dataclass

from bot.access import Action, allows
from bot.context import AppContext
from storage.repositories import studies as study_repo


@dataclass(frozen=True)
class MyStudy:
    key: str
    title: str
    role: str
    may_add: bool  # add candidates
    may_view: bool  # see identifiers (contact cards, search)


def my_studies(ctx: AppContext, user_id: str) -> list[MyStudy]:
    """The active studies the user is an active member of, by key (none for anyone else)."""
    with ctx.db.session() as session:
        return [MyStudy(s.key, s.title, role, allows(role, Action.ADD_LEAD),
                        allows(role, Action.VIEW_PHI))
                for s, role in study_repo.studies_for(session, user_id)]
