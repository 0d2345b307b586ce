"""The one way the app sends a durable message to Slack: a row in the same transaction as the
change it announces, delivered later by the `outbox` job (paced, retried, never twice).

Rule: use cases, jobs and digests call `post`, `post_many`, `update` or `upload_file` here and
never the outbox repository or the Slack Web API themselves (tests/test_one_outbox.py checks).
Only a listener's immediate answer to the user who acted goes straight to Slack: ephemeral
replies, `respond()`, `views.open`, `views.update`, `views.publish` and the DM fallback of an
ephemeral reply. Those belong to the request being answered; if Slack refuses them the user
sees it and tries again, so they are not queued.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.context import AppContext
from integrations.slack_outbox import FILE_UPLOAD_METHOD, DispatchStats, OutboxDispatcher
from storage.models import OutboxMessage
from storage.repositories import outbox as repo
from storage.repositories import studies as study_repo


def _payload(text: str, blocks: list[dict[str, Any]] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": text}
    if blocks:
        payload["blocks"] = blocks
    return payload


def post(ctx: AppContext, session: Session, *, key: str, kind: str, channel: str, text: str,
         blocks: list[dict[str, Any]] | None = None, study_key: str | None = None,
         thread_of: str | None = None) -> bool:
    """Queue a message (a thread reply when `thread_of` names an earlier message's key)."""
    return repo.enqueue(session, key=key, kind=kind, channel=channel,
                        payload=_payload(text, blocks), parent_key=thread_of, study_key=study_key,
                        now=ctx.clock.now())


@dataclass(frozen=True)
class Message:
    """One message of a batch for `post_many`; `key` is its idempotency key."""

    key: str
    kind: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    study_key: str | None = None
    thread_of: str | None = None


def post_many(ctx: AppContext, session: Session, messages: Sequence[Message], *,
              now: dt.datetime | None = None) -> int:
    """Queue a batch in one statement (what jobs send); a key already queued is skipped.
    Returns how many were added."""
    rows = [{"key": m.key, "kind": m.kind, "channel": m.channel,
             "payload": _payload(m.text, m.blocks), "parent_key": m.thread_of,
             "study_key": m.study_key} for m in messages]
    return repo.enqueue_many(session, rows, now=now or ctx.clock.now())


def update(ctx: AppContext, session: Session, *, key: str, of: str, kind: str, text: str,
           blocks: list[dict[str, Any]] | None, channel: str, study_key: str | None = None) -> bool:
    """Queue a chat.update of the message queued under key `of`."""
    payload: dict[str, Any] = {"text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    return repo.enqueue(session, key=key, kind=kind, channel=channel, payload=payload,
                        method="chat.update", parent_key=of, study_key=study_key,
                        now=ctx.clock.now())


MAX_UPLOAD_BYTES = 512 * 1024


def upload_file(ctx: AppContext, session: Session, *, key: str, kind: str, channel: str,
                filename: str, data: bytes, title: str, initial_comment: str | None = None,
                study_key: str | None = None, thread_of: str | None = None) -> bool:
    """Queue a file for the channel (Slack's upload v2 flow), stored base64 in the row.

    Files are meant to be small (charts, short exports); bigger ones are refused here rather
    than bloating the outbox table.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{filename} is {len(data)} bytes; outbox uploads are limited to "
                         f"{MAX_UPLOAD_BYTES}")
    payload: dict[str, Any] = {"filename": filename, "title": title,
                               "content_b64": base64.b64encode(data).decode("ascii")}
    if initial_comment:
        payload["initial_comment"] = initial_comment
    return repo.enqueue(session, key=key, kind=kind, channel=channel, payload=payload,
                        method=FILE_UPLOAD_METHOD, parent_key=thread_of, study_key=study_key,
                        now=ctx.clock.now())


def _alert_admins(ctx: AppContext) -> Any:
    def on_failed(session: Session, row: OutboxMessage, error: str) -> None:
        if row.kind == "admin_alert":
            return
        admins = study_repo.admin_user_ids(session, row.study_key)
        where = f"<#{row.channel}>" if row.channel.startswith(("C", "G")) else "a DM"
        hint = {
            "channel_not_found": "the channel id is wrong or was deleted: fix it in the studies file",
            "not_in_channel": f"invite the bot: type `/invite @prescreen-bot` in {where}",
            "is_archived": "the channel is archived: unarchive it or point the study elsewhere",
            "missing_scope": "reinstall the app from manifest.yml so it has every scope listed "
                             "there (the history scopes let it check what it already posted)",
        }.get(error, "see `prescreen-bot outbox list`")
        text = (f":rotating_light: A {row.kind.replace('_', ' ')} for {where} could not be "
                f"delivered ({error}). To fix: {hint}. Then `prescreen-bot outbox retry {row.id}`.")
        for admin in admins:
            post(ctx, session, key=f"alert:{row.id}:{admin}", kind="admin_alert", channel=admin,
                 text=text)

    return on_failed


def dispatcher(ctx: AppContext) -> OutboxDispatcher:
    return OutboxDispatcher(ctx.db, ctx.slack, now=ctx.clock.now,
                            channel_interval=ctx.settings.outbox_channel_interval,
                            on_failed=_alert_admins(ctx))


def deliver(ctx: AppContext, max_seconds: float = 10.0) -> DispatchStats:
    """The `outbox` job: deliver everything due now."""
    return dispatcher(ctx).drain(max_seconds=max_seconds)


def outbox_job(ctx: AppContext) -> str:
    stats = deliver(ctx, max_seconds=8.0)
    return str(stats) if (stats.sent or stats.failed or stats.retried) else ""


def gauges(ctx: AppContext) -> dict[str, float]:
    """Outbox depth and the age of the oldest due message, for /metrics."""
    with ctx.db.session() as session:
        n, age = repo.depth(session, now=ctx.clock.now())
    return {"prescreen_outbox_depth": float(n), "prescreen_outbox_oldest_due_seconds": age}
