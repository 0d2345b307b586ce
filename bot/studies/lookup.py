"""Find the study a user named, with a hint listing theirs when there is no such study."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot import blocks as bk
from bot.errors import UnknownStudy
from storage.models import Study
from storage.repositories import studies as study_repo


def study_or_error(session: Session, key: str, user_id: str) -> Study:
    study = study_repo.get_study(session, key) if key else None
    if study is None or not study.active:
        mine = [s.key for s, _ in study_repo.studies_for(session, user_id)]
        hint = f"Your studies: {', '.join(mine)}." if mine else "You are not in any study yet."
        raise UnknownStudy(f"There is no study {bk.code_word(key, 'by that name')}. {hint}")
    return study
