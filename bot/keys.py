"""Encryption-key rotation: re-encrypt every PHI field with the newest key and re-index."""

from __future__ import annotations

from dataclasses import dataclass

from storage import audit
from storage.crypto import PHICipher
from storage.db import Database
from storage.models import Candidate, CandidateNote, PrescreenCall, Referral
from storage.repositories import candidates as repo
from storage.repositories import studies as study_repo

BATCH = 500


@dataclass
class RotationReport:
    candidates: int = 0
    calls: int = 0
    referrals: int = 0
    notes: int = 0

    def __str__(self) -> str:
        return (f"re-encrypted {self.candidates} candidates, {self.calls} call notes, "
                f"{self.referrals} rejection notes, {self.notes} contact-card notes with the "
                "newest key")


def rotate_keys(db: Database, cipher: PHICipher, actor: str = "cli") -> RotationReport:
    """After prepending a new key to PRESCREEN_ENCRYPTION_KEYS: run this, then the old key can be
    removed. Batches commit one by one; running it again is harmless."""
    report = RotationReport()
    with db.session() as session:
        study_keys = study_repo.keys_by_id(session)
    last = 0
    while True:
        with db.session() as session:
            rows = repo.rows_after(session, Candidate, last, BATCH)
            for c in rows:
                name, phone = cipher.decrypt(c.name_enc), cipher.decrypt(c.phone_enc)
                dob = cipher.decrypt_optional(c.dob_enc)
                c.name_enc, c.phone_enc = cipher.rotate(c.name_enc), cipher.rotate(c.phone_enc)
                c.dob_enc = cipher.rotate(c.dob_enc) if c.dob_enc else None
                c.name_index, c.phone_index = cipher.index(name), cipher.index(phone)
                if c.dedupe_index and dob:
                    c.dedupe_index = cipher.index(study_keys[c.study_id], phone, dob)
        if not rows:
            break
        report.candidates += len(rows)
        last = rows[-1].id
    for model, attr, counter in ((PrescreenCall, "notes_enc", "calls"),
                                 (Referral, "reason_note_enc", "referrals"),
                                 (CandidateNote, "text_enc", "notes")):
        last = 0
        while True:
            with db.session() as session:
                rows = repo.rows_after(session, model, last, BATCH)
                for row in rows:
                    token = getattr(row, attr)
                    if token:
                        setattr(row, attr, cipher.rotate(token))
                        setattr(report, counter, getattr(report, counter) + 1)
            if not rows:
                break
            last = rows[-1].id
    with db.session() as session:
        audit.record(session, actor=actor, action="keys.rotated", entity="encryption", entity_id="*",
                     after={"candidates": report.candidates, "calls": report.calls,
                            "referrals": report.referrals, "notes": report.notes})
    return report


