"""Scheduler jobs for callbacks. Each tick selects what is due and not yet done, claims it
(exactly once across workers) and queues the Slack messages in the same transaction: a worker
that was down catches up once (reminders marked late), and nothing is sent twice."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from bot import outbox, secure_links
from bot.callbacks import cadence, views
from bot.callbacks.service import escalate_after
from bot.context import AppContext
from integrations import metrics
from storage import audit
from storage.models import Callback
from storage.repositories import callbacks as repo

log = logging.getLogger("prescreen.callbacks")

BATCH = 1000  # per transaction: fewer round trips and commits; the write lock held ~0.1 s
LATE_GRACE = dt.timedelta(minutes=2)


def send_due_reminders(ctx: AppContext, *, batch: int = BATCH) -> tuple[int, int]:
    """Claim due reminders and queue their DMs. Returns (sent, of which late)."""
    sent = late = 0
    while True:
        now = ctx.clock.now()
        with ctx.db.session() as session:
            claimed = repo.claim_reminder_rows(session, now=now, late_before=now - LATE_GRACE,
                                               limit=batch)
            if not claimed:
                break
            messages: list[outbox.Message] = []
            events: list[dict[str, Any]] = []
            reminded: list[dict[str, Any]] = []
            call = _calling(ctx)
            for cb in claimed:
                if cb.do_not_call:
                    repo.close_many(session, [cb.id], status="cancelled", completed_at=None)
                    events.append(_event(cb.id, cb.ref_code, "callback.cancelled",
                                         {"status": "cancelled"}, "candidate is on do-not-call"))
                    continue
                if not cb.owner_active:
                    # access revoked: no DM; the overdue note in the study channel still comes
                    events.append(_event(cb.id, cb.ref_code, "callback.reminder_skipped",
                                         {"owner": "deactivated"},
                                         "owner deactivated; hand the callback to someone"))
                    continue
                messages.append(_reminder_message(ctx, cb, now, call=call))
                metrics.reminder_lateness((now - cb.remind_at).total_seconds())
                reminded.append({"callback": cb.id, "candidate": cb.ref_code,
                                 "remind_at": cb.remind_at.isoformat(), "late": cb.reminded_late})
                sent += 1
                late += int(cb.reminded_late)
            outbox.post_many(ctx, session, messages, now=now)
            if reminded:  # one event per batch: a reminder DM changes nothing about the callback
                events.append({"actor": "scheduler", "action": "callback.reminded",
                               "entity": "callback_batch",
                               "entity_id": f"{reminded[0]['callback']}-{reminded[-1]['callback']}",
                               "after": {"reminded": reminded}, "reason": None})
            audit.record_many(session, events)
        if len(claimed) < batch:
            break
    return sent, late


def _event(callback_id: int, ref: str, action: str, after: dict[str, Any],
           reason: str | None) -> dict[str, Any]:
    return {"actor": "scheduler", "action": action, "entity": "callback", "entity_id": callback_id,
            "after": {"candidate": ref, **after}, "reason": reason}


def _calling(ctx: AppContext) -> bool:
    """RingCentral is configured (or the sandbox's stand-in is): reminders get a Call button."""
    return ctx.settings.ringcentral_configured or ctx.extras.get("ringcentral") is not None


def _reminder_message(ctx: AppContext, cb: repo.Reminder, now: dt.datetime, *,
                      call: bool = False) -> outbox.Message:
    text = views.reminder_text(ref=cb.ref_code, kind=cb.kind, due_at=cb.due_at,
                               owner_tz=cb.owner_tz, candidate_tz=cb.candidate_tz,
                               attempt=cb.attempts + 1, max_attempts=cb.max_attempts,
                               now=now, late=cb.reminded_late)
    blocks = views.reminder_blocks(callback_id=cb.id, ref=cb.ref_code, text=text,
                                   late=cb.reminded_late, reminded_for=cb.remind_at,
                                   owner_tz=cb.owner_tz,
                                   card_url=secure_links.contact_card_url(ctx.settings, cb.ref_code)
                                   if ctx.settings.portal else None)
    if call:  # RingCentral configured: a Call button beside Log call
        blocks = [*blocks, views.call_row(cb.ref_code)]
    return outbox.Message(key=f"cb-remind:{cb.id}:v{cb.version}", kind="callback_reminder",
                          channel=cb.owner_slack_id, text=text, blocks=blocks,
                          study_key=cb.study_key)


def escalate_overdue(ctx: AppContext, *, batch: int = BATCH) -> int:
    """Requested callbacks nobody acted on by due + escalation delay: marked missed, and one
    note per coordinator in the study channel (counts only)."""
    total = 0
    while True:
        now = ctx.clock.now()
        with ctx.db.session() as session:
            ids = repo.claim_overdue(session, now=now, cutoff=now - escalate_after(ctx), limit=batch)
            if not ids:
                break
            groups: dict[tuple[int, int], list[Callback]] = defaultdict(list)
            for cb in repo.load(session, ids):
                groups[(cb.study_id, cb.owner_id)].append(cb)
            messages: list[outbox.Message] = []
            for group in groups.values():
                study, owner = group[0].candidate.study, group[0].owner
                first = min(cb.due_at for cb in group)
                text = views.escalation_text(owner.slack_user_id, len(group), study.key, first,
                                             study.timezone)
                key = "cb-escalate:" + ",".join(str(cb.id) for cb in group)
                if len(key) > 190:
                    key = f"cb-escalate:{group[0].id}..{group[-1].id}:{len(group)}"
                messages.append(outbox.Message(key=key, kind="callback_escalation",
                                               channel=study.channel_id, text=text,
                                               study_key=study.key))
            outbox.post_many(ctx, session, messages, now=now)
            audit.record_many(session, [
                _event(cb.id, cb.candidate.ref_code, "callback.missed", {"status": "missed"},
                       "no call logged in time")
                for group in groups.values() for cb in group])
            total += len(ids)
        if len(ids) < batch:
            break
    return total


def callbacks_job(ctx: AppContext) -> str:
    sent, late = send_due_reminders(ctx)
    escalated = escalate_overdue(ctx)
    if not (sent or escalated):
        return ""
    return f"{sent} reminders ({late} late), {escalated} escalated"


def cadence_job(ctx: AppContext) -> str:
    planned, unreachable = cadence.plan_pending(ctx)
    if not (planned or unreachable):
        return ""
    return f"{planned} next attempts planned, {unreachable} now unreachable"
