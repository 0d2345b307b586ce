"""Add a note to a candidate from the contact card. The text is stored encrypted and never
written to the audit trail or a log."""

from __future__ import annotations

from dataclasses import dataclass

from bot.access import Action, require_role
from bot.candidates.card import unknown
from bot.context import AppContext
from bot.forms import FormErrors
from bot.prescreen.queries import is_ref
from storage import audit
from storage.repositories import candidate_notes as notes_repo
from storage.repositories import candidates as cand_repo
from storage.repositories import studies as study_repo

MAX_NOTE = 2000


@dataclass(frozen=True)
class NoteAdded:
    ref: str
    note_id: int


def add_note(ctx: AppContext, user_id: str, ref: str, text: str) -> NoteAdded:
    """FormErrors({"text": …}) when empty or too long; UnknownCandidate / NotAllowed as the card."""
    text = (text or "").strip()
    with ctx.db.session() as session:
        cand = cand_repo.by_ref(session, ref) if is_ref(ref) else None
        if cand is None:
            raise unknown(ref, [s.key for s, _ in study_repo.studies_for(session, user_id)])
        require_role(session, user_id, cand.study, Action.ADD_NOTE)
        if not text:
            raise FormErrors({"text": "Write the note first."})
        if len(text) > MAX_NOTE:
            raise FormErrors({"text": f"A note is at most {MAX_NOTE:,} characters; this one has "
                                      f"{len(text):,}. Shorten it or split it in two."})
        member = study_repo.get_member(session, user_id)
        assert member is not None  # require_role found their role
        note = notes_repo.add(session, cand.id, member.id, ctx.cipher.encrypt(text),
                              ctx.clock.now())
        audit.record(session, actor=user_id, action="note.added", entity="candidate",
                     entity_id=cand.ref_code, after={"note_id": note.id, "via": "contact card"})
        return NoteAdded(cand.ref_code, note.id)
