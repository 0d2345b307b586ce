"""Escalation: a referral pending approval past its study's approval SLA (`approval_sla_hours`,
default 24 h) is escalated ONCE to the study's admins and the available approvers (or the
delegates of those out of office), by DM through the outbox: counts and reference codes only.

Each referral is claimed (escalated_at set where it was empty) in the same transaction as the
messages, so any number of workers, or a worker that was down, escalate it exactly once."""

from __future__ import annotations

import datetime as dt
import hashlib

from bot import outbox
from bot.context import AppContext
from bot.referrals.workflow import BOT_ACTOR, who_decides
from storage import audit
from storage.repositories import approvals as repo
from storage.repositories import studies as study_repo


def escalate_overdue(ctx: AppContext) -> int:
    """Escalate what is overdue now; returns how many referrals were escalated."""
    now = ctx.clock.now()
    total = 0
    with ctx.db.session() as session:
        for study in study_repo.list_studies(session):
            if not study.approval_required:
                continue
            hours = study.approval_sla_hours or 24
            overdue = repo.pending_since(session, study.id, now - dt.timedelta(hours=hours))
            claimed = [r for r in overdue if repo.mark_escalated(session, r.id, now)]
            if not claimed:
                continue
            refs = sorted(r.candidate.ref_code for r in claimed)
            deciders: set[str] = set()
            for r in claimed:
                deciders.update(who_decides(ctx, session, r, now))
            recipients = sorted(set(study_repo.admin_user_ids(session, study.key)) | deciders)
            n = len(refs)
            shown = ", ".join(refs[:20]) + (f" and {n - 20} more" if n > 20 else "")
            text = (f":rotating_light: {study.key}: {n} referral{'s' if n != 1 else ''} waiting "
                    f"for approval for more than {hours} h: {shown}. Decide on the cards in "
                    f"<#{study.channel_id}>, or `/prescreen delegate` if you are away.")
            batch = hashlib.sha256(",".join(str(r.id) for r in claimed).encode()).hexdigest()[:16]
            outbox.post_many(ctx, session, [
                outbox.Message(key=f"approval-escalation:{study.key}:{batch}:{uid}",
                               kind="approval_escalation", channel=uid, text=text,
                               study_key=study.key)
                for uid in recipients], now=now)
            audit.record(session, actor=BOT_ACTOR, action="referral.escalated", entity="study",
                         entity_id=study.key,
                         after={"referrals": refs, "to": recipients, "sla_hours": hours})
            total += n
    return total


def approvals_job(ctx: AppContext) -> str:
    n = escalate_overdue(ctx)
    return f"{n} referrals escalated" if n else "nothing overdue"
