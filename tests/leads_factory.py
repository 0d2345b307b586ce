"""Leads for the work-queue tests, created the way intake creates them: Candidate rows in status
needs_call with a source, no owner yet, created_at = intake time, PHI encrypted."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bot.context import AppContext
from bot.studies.importer import import_studies
from storage.db import Database
from storage.models import Candidate, Member, Study
from storage.repositories import candidates as cand_repo

LEAD_NAME, LEAD_PHONE = "Theodora Quimbleworth", "+13125550199"


def member_id(db: Database, slack_id: str) -> int:
    with db.session() as s:
        return s.scalars(select(Member.id).where(Member.slack_user_id == slack_id)).one()


def make_lead(ctx: AppContext, study_key: str, created_at: dt.datetime, *,
              tz: str = "America/Chicago", region: str | None = "IL", owner: str | None = None,
              source: str = "web form", attempts: int = 0, status: str = "needs_call",
              **extra: Any) -> str:
    c = ctx.cipher
    with ctx.db.session() as s:
        study = s.scalars(select(Study).where(Study.key == study_key)).one()
        owner_id = s.scalars(select(Member.id).where(Member.slack_user_id == owner)).one() \
            if owner else None
        cand = cand_repo.create(s, study.id, study.key, {
            "name_enc": c.encrypt(LEAD_NAME), "phone_enc": c.encrypt(LEAD_PHONE),
            "phone_index": c.index(LEAD_PHONE), "name_index": c.index(LEAD_NAME),
            "region": region, "timezone": tz, "consent_to_contact": True, "status": status,
            "attempts": attempts, "source": source, "owner_id": owner_id,
            "created_at": created_at, **extra})
        return cand.ref_code


def bulk_leads(ctx: AppContext, study_key: str, n: int, created_at: dt.datetime,
               **fields: Any) -> None:
    c = ctx.cipher
    name, phone = c.encrypt(LEAD_NAME), c.encrypt(LEAD_PHONE)
    with ctx.db.session() as s:
        study = s.scalars(select(Study).where(Study.key == study_key)).one()
        start = s.scalar(select(func.max(Candidate.seq)).where(Candidate.study_id == study.id)) or 0
        rows = [{"study_id": study.id, "seq": start + i + 1,
                 "ref_code": cand_repo.ref_code(study.key, start + i + 1),
                 "name_enc": name, "phone_enc": phone, "phone_index": f"bulk{start + i}",
                 "region": "IL", "timezone": "America/Chicago", "consent_to_contact": True,
                 "do_not_call": False, "status": "needs_call", "attempts": 0, "source": "web form",
                 "created_at": created_at + dt.timedelta(seconds=i), "updated_at": created_at,
                 **fields} for i in range(n)]
        s.execute(insert(Candidate), rows)


def import_yaml(db: Database, tmp_path: Path, text: str) -> None:
    path = tmp_path / "extra_studies.yaml"
    path.write_text(textwrap.dedent(text))
    import_studies(db, path, actor="test")
