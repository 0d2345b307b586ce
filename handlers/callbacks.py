"""Listeners for the callback reminder DM (Done, Snooze, Reschedule, Hand off), their modals,
and `/prescreen callbacks`. "Log call" on the reminder is handled with the log-call modal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks as bk
from bot import ids
from bot.callbacks import service
from bot.callbacks import views as cv
from bot.context import AppContext
from bot.errors import BadPayload, DomainError
from handlers import payloads
from handlers.common import CommandRequest, Subcommand, by_field, open_view, submit_form, tell


def _callbacks(req: CommandRequest) -> None:
    tz, rows, total = service.upcoming(req.ctx, req.user_id)
    text, blocks = cv.upcoming_blocks(tz, rows, total, req.ctx.clock.now())
    req.reply(text, blocks=blocks)


SUBCOMMANDS = [
    Subcommand("callbacks", "/prescreen callbacks", "your upcoming callbacks, soonest first", _callbacks,
               aliases=("cb",)),
]


def _clicked(body: dict[str, Any]) -> tuple[str, str, int, str | None]:
    """(user, action id, callback id, channel) of a click on a reminder button."""
    user_id, act, channel = payloads.action(body)
    value = bk.parse(act.value, payloads.CallbackValue, where=payloads.FROM_REMINDER)
    return user_id, act.action_id, value.cb, channel


def _warn(respond: Respond, text: str) -> None:
    respond(text=f":warning: {text}", response_type="ephemeral", replace_original=False)


def _replace(respond: Respond, message: str) -> None:
    respond(text=message, blocks=cv.result_blocks(message), replace_original=True)


def _reschedule_view(info: service.CallbackInfo, channel: str | None) -> dict[str, Any]:
    return cv.reschedule_modal(info.callback_id, info.ref, info.due_at, info.candidate_tz, channel)


def _handoff_view(info: service.CallbackInfo, channel: str | None) -> dict[str, Any]:
    return cv.handoff_modal(info.callback_id, info.ref, info.study_key, info.coordinators, channel)


# the reschedule form's fields (InvalidInput.field of bot.callbacks.service) and their blocks
RESCHEDULE_BLOCKS = {"day": ids.RS_DATE_BLOCK, "time": ids.RS_TIME_BLOCK}

# buttons that act at once, and buttons that open a modal first
ACTIONS: dict[str, Callable[..., service.ActionResult]] = {
    ids.CALLBACK_SNOOZE: service.snooze,
    ids.CALLBACK_DONE: service.mark_done,
}
MODALS: dict[str, Callable[[service.CallbackInfo, str | None], dict[str, Any]]] = {
    ids.CALLBACK_RESCHEDULE: _reschedule_view,
    ids.CALLBACK_HANDOFF: _handoff_view,
}


def register(app: App, ctx: AppContext) -> None:
    def act(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        user_id, action_id, callback_id, _ = _clicked(body)
        ack()
        try:
            result = ACTIONS[action_id](ctx, callback_id=callback_id, actor=user_id)
        except DomainError as exc:
            _warn(respond, exc.message)
            return
        _replace(respond, result.message)

    def open_modal(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user_id, action_id, callback_id, channel = _clicked(body)
        ack()
        try:
            info = service.callback_info(ctx, callback_id=callback_id, actor=user_id)
        except DomainError as exc:
            _warn(respond, exc.message)
            return
        open_view(client, body.get("trigger_id"), MODALS[action_id](info, channel),
                  respond=respond)

    for action_id in ACTIONS:
        app.action(action_id)(act)
    for action_id in MODALS:
        app.action(action_id)(open_modal)

    @app.view(ids.RESCHEDULE_VIEW)
    def reschedule_submitted(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, view = payloads.submission(body, payloads.FROM_REMINDER)
        meta = bk.parse(view.private_metadata, payloads.CallbackMeta,
                        where=payloads.FROM_REMINDER, form=True)
        values = view.state.values
        day = bk.form_value(values, ids.RS_DATE_BLOCK, ids.RS_DATE_INPUT,
                            where=payloads.FROM_REMINDER)
        hhmm = bk.form_value(values, ids.RS_TIME_BLOCK, ids.RS_TIME_INPUT,
                             where=payloads.FROM_REMINDER)
        result = submit_form(
            ack, lambda: service.reschedule(ctx, callback_id=meta.cb, actor=user_id,
                                            day=_day(day), hhmm=hhmm),
            field_blocks=by_field(RESCHEDULE_BLOCKS, ids.RS_TIME_BLOCK),
            domain_block=ids.RS_TIME_BLOCK, failure_block=ids.RS_TIME_BLOCK,
            again="Press Reschedule again.", what="rescheduling a callback")
        if result is not None:
            tell(client, user_id, meta.c, result.message, None)

    @app.view(ids.HANDOFF_VIEW)
    def handoff_submitted(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, view = payloads.submission(body, payloads.FROM_REMINDER)
        meta = bk.parse(view.private_metadata, payloads.CallbackMeta,
                        where=payloads.FROM_REMINDER, form=True)
        to_user = bk.form_value(view.state.values, ids.HANDOFF_BLOCK, ids.HANDOFF_SELECT,
                                where=payloads.FROM_REMINDER)
        result = submit_form(
            ack, lambda: service.hand_off(ctx, callback_id=meta.cb, actor=user_id,
                                          to_user=to_user),
            field_blocks=by_field({}, ids.HANDOFF_BLOCK), domain_block=ids.HANDOFF_BLOCK,
            failure_block=ids.HANDOFF_BLOCK, again="Press Hand off again.",
            what="handing off a callback")
        if result is not None:
            tell(client, user_id, meta.c, result.message, None)


def _day(raw: str | None) -> dt.date | None:
    """A datepicker value (already YYYY-MM-DD); an impossible date is a damaged form."""
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadPayload(payloads.FROM_REMINDER, form=True, block=ids.RS_DATE_BLOCK,
                         detail="date") from None
