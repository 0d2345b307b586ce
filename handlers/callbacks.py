"""Listeners for the callback reminder DM (Done, Snooze, Reschedule, Hand off), their modals,
and `/prescreen callbacks`. "Log call" on the reminder is handled with the log-call modal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks as bk
from bot import ids
from bot.callbacks import service
from bot.callbacks import views as cv
from bot.context import AppContext
from bot.errors import DomainError, InvalidInput
from handlers.common import CommandRequest, Subcommand, open_view, tell


def _callbacks(req: CommandRequest) -> None:
    tz, rows, total = service.upcoming(req.ctx, req.user_id)
    text, blocks = cv.upcoming_blocks(tz, rows, total, req.ctx.clock.now())
    req.reply(text, blocks=blocks)


SUBCOMMANDS = [
    Subcommand("callbacks", "/prescreen callbacks", "your upcoming callbacks, soonest first", _callbacks,
               aliases=("cb",)),
]


def _callback_id(body: dict[str, Any]) -> int:
    return int(bk.decode(body["actions"][0].get("value")).get("cb") or 0)


def _warn(respond: Respond, text: str) -> None:
    respond(text=f":warning: {text}", response_type="ephemeral", replace_original=False)


def _replace(respond: Respond, message: str) -> None:
    respond(text=message, blocks=cv.result_blocks(message), replace_original=True)


def register(app: App, ctx: AppContext) -> None:
    @app.action(ids.CALLBACK_SNOOZE)
    def snooze(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        try:
            result = service.snooze(ctx, callback_id=_callback_id(body), actor=body["user"]["id"])
        except DomainError as exc:
            _warn(respond, exc.message)
            return
        _replace(respond, result.message)

    @app.action(ids.CALLBACK_DONE)
    def done(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        try:
            result = service.mark_done(ctx, callback_id=_callback_id(body), actor=body["user"]["id"])
        except DomainError as exc:
            _warn(respond, exc.message)
            return
        _replace(respond, result.message)

    @app.action(ids.CALLBACK_RESCHEDULE)
    def reschedule(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        try:
            info = service.callback_info(ctx, callback_id=_callback_id(body), actor=body["user"]["id"])
        except DomainError as exc:
            _warn(respond, exc.message)
            return
        view = cv.reschedule_modal(info.callback_id, info.ref, info.due_at, info.candidate_tz,
                                   (body.get("channel") or {}).get("id"))
        open_view(client, body.get("trigger_id"), view, respond=respond)

    @app.action(ids.CALLBACK_HANDOFF)
    def handoff(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        try:
            info = service.callback_info(ctx, callback_id=_callback_id(body), actor=body["user"]["id"])
        except DomainError as exc:
            _warn(respond, exc.message)
            return
        view = cv.handoff_modal(info.callback_id, info.ref, info.study_key, info.coordinators,
                                (body.get("channel") or {}).get("id"))
        open_view(client, body.get("trigger_id"), view, respond=respond)

    @app.view(ids.RESCHEDULE_VIEW)
    def reschedule_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any],
                             client: WebClient) -> None:
        meta = bk.decode(view.get("private_metadata"))
        values = (view.get("state") or {}).get("values") or {}
        day = bk.form_value(values, ids.RS_DATE_BLOCK, ids.RS_DATE_INPUT)
        hhmm = bk.form_value(values, ids.RS_TIME_BLOCK, ids.RS_TIME_INPUT)
        user_id = body["user"]["id"]
        try:
            result = service.reschedule(ctx, callback_id=int(meta.get("cb") or 0), actor=user_id,
                                        day=dt.date.fromisoformat(day) if day else None, hhmm=hhmm)
        except InvalidInput as exc:
            block = ids.RS_DATE_BLOCK if exc.message.startswith("Pick the day") else ids.RS_TIME_BLOCK
            ack(response_action="errors", errors={block: exc.message})
            return
        except DomainError as exc:
            ack(response_action="errors", errors={ids.RS_TIME_BLOCK: exc.message})
            return
        ack()
        tell(client, user_id, meta.get("c"), result.message, None)

    @app.view(ids.HANDOFF_VIEW)
    def handoff_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any],
                          client: WebClient) -> None:
        meta = bk.decode(view.get("private_metadata"))
        values = (view.get("state") or {}).get("values") or {}
        to_user = bk.form_value(values, ids.HANDOFF_BLOCK, ids.HANDOFF_SELECT)
        user_id = body["user"]["id"]
        try:
            result = service.hand_off(ctx, callback_id=int(meta.get("cb") or 0), actor=user_id,
                                      to_user=to_user)
        except DomainError as exc:
            ack(response_action="errors", errors={ids.HANDOFF_BLOCK: exc.message})
            return
        ack()
        tell(client, user_id, meta.get("c"), result.message, None)
