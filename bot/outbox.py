"""Workflows send to Slack only through here: a row in the same transaction as the change."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy.orm import Session

from bot.context import AppContext
from integrations.slack_outbox import FILE_UPLOAD_METHOD, DispatchStats, OutboxDispatcher
from storage.models import OutboxMessage
from storage.repositories import outbox as repo
from storage.repositories import studies as study_repo


def post(ctx: AppContext, session: Session, *, key: str, kind: str, channel: str, text: str,
         blocks: list[dict[str, Any]] | None = None, study_key: str | None = None,
         thread_of: str | None = None) -> bool:
    """Queue a message (a thread reply when `thread_of` names an earlier message's key)."""
    payload: dict[str, Any] = {"text": text}
    if blocks:
        payload["blocks"] = blocks
    return repo.enqueue(session, key=key, kind=kind, channel=channel, payload=payload,
                        parent_key=thread_of, study_key=study_key, now=ctx.clock.now())


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
        from storage.models import Study

        admins: list[str] = []
        if row.study_key:
            study = study_repo.get_study(session, row.study_key)
            if study is not None:
                admins = [m.slack_user_id for m in study_repo.members_with_role(session, study.id,
                                                                                 "admin")]
        else:
            for study in session.query(Study).all():
                admins += [m.slack_user_id for m in study_repo.members_with_role(session, study.id,
                                                                                  "admin")]
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
        for admin in sorted(set(admins)):
            repo.enqueue(session, key=f"alert:{row.id}:{admin}", kind="admin_alert", channel=admin,
                         payload={"text": text}, study_key=None, now=ctx.clock.now())

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
