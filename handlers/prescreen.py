"""Listeners for logging calls, candidate status and search, and App Home."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks as bk
from bot import ids
from bot.context import AppContext
from bot.errors import DomainError
from bot.prescreen import cards, queries
from bot.prescreen import views as modal
from bot.prescreen.workflow import CallLogged, log_call, study_or_error
from handlers.common import CommandRequest, Subcommand, open_view, submit_form, tell

log = logging.getLogger("prescreen.handlers.prescreen")


# ----- slash subcommands -----

def _open_log_modal(req: CommandRequest) -> None:
    target = req.args[0] if req.args else None
    setup = queries.log_modal_setup(req.ctx, req.user_id, target)  # DomainError → error handler
    req.ack()
    state = modal.ModalState(study=setup.study_key, ref=setup.candidate.ref if setup.candidate else None,
                             mode="existing" if setup.candidate else "new", channel=req.channel_id)
    view = modal.log_call_modal(setup.studies, state, setup.candidate)
    open_view(req.client, req.trigger_id, view, respond=req.respond)


def _status(req: CommandRequest) -> None:
    if not req.args:
        req.reply("Which candidate? Try `/prescreen status ALZ-0042`.")
        return
    status = queries.candidate_status(req.ctx, req.user_id, req.args[0])
    req.reply(cards.status_text(status), blocks=cards.status_blocks(status))


def _find(req: CommandRequest) -> None:
    query = " ".join(req.args)
    rows = queries.find_candidates(req.ctx, req.user_id, query)
    kind = "phone number" if sum(ch.isdigit() for ch in query) >= 7 else "name"
    text, blocks = cards.found_blocks(kind, rows)
    req.reply(text, blocks=blocks)


SUBCOMMANDS = [
    Subcommand("", "/prescreen", "log a pre-screen call (opens the form)", _open_log_modal),
    Subcommand("log", "/prescreen log [STUDY | REF]", "log a call for a study or a known candidate",
               _open_log_modal),
    Subcommand("status", "/prescreen status REF", "a candidate's status, attempts and next callback",
               _status),
    Subcommand("find", "/prescreen find PHONE|NAME", "find reference codes in your studies", _find),
]


# ----- listeners -----

def register(app: App, ctx: AppContext) -> None:
    @app.action(ids.STUDY_SELECT)
    @app.action(ids.MODE_SELECT)
    def rerender(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        view = body["view"]
        state = modal.ModalState.decode(view.get("private_metadata"))
        values = (view.get("state") or {}).get("values") or {}
        state.study = modal.selected_study(values) or state.study
        action = body["actions"][0]
        if action["action_id"] == ids.MODE_SELECT:
            state.mode = (action.get("selected_option") or {}).get("value") or "new"
        setup = queries.log_modal_for_study(ctx, body["user"]["id"], state.study, state.ref)
        new_view = modal.log_call_modal(setup.studies, state, setup.candidate)
        try:
            client.views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)
        except SlackApiError as exc:
            # hash_conflict: a newer update already landed; that one wins
            log.info("views.update skipped: %s", exc.response.get("error"))

    @app.view(ids.LOG_CALL_VIEW)
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        user_id = body["user"]["id"]
        values = (view.get("state") or {}).get("values") or {}
        state = modal.ModalState.decode(view.get("private_metadata"))
        study_key = modal.selected_study(values) or state.study

        def save() -> CallLogged:
            if not study_key:
                raise DomainError("Pick a study.")
            with ctx.db.session() as session:
                study = study_or_error(session, study_key, user_id)
            return log_call(ctx, modal.parse_submission(view, user_id, study))

        result = submit_form(
            ack, save, domain_block=ids.STUDY_BLOCK, failure_block=ids.OUTCOME_BLOCK,
            field_blocks=lambda errors: modal.errors_to_blocks(errors, view),
            again="Your entries are still here; press Log call again.", what="log call")
        if result is None:
            return
        tell(client, user_id, state.channel, result.summary, cards.logged_blocks(result))
        _publish_home(ctx, client, user_id)

    @app.action(re.compile(f"^({ids.HOME_LOG_CALL}|{ids.CALLBACK_LOG})$"))
    def log_from_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        value = bk.decode(body["actions"][0].get("value"))
        user_id = body["user"]["id"]
        try:
            setup = queries.log_modal_setup(ctx, user_id, value.get("ref"))
        except DomainError as exc:
            tell(client, user_id, (body.get("channel") or {}).get("id"), exc.message, None)
            return
        state = modal.ModalState(study=setup.study_key, mode="existing",
                                 ref=setup.candidate.ref if setup.candidate else None,
                                 channel=(body.get("channel") or {}).get("id"))
        open_view(client, body.get("trigger_id"), modal.log_call_modal(setup.studies, state,
                                                                          setup.candidate))

    @app.action(ids.HOME_REFRESH)
    def refresh(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        _publish_home(ctx, client, body["user"]["id"])

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            _publish_home(ctx, client, event["user"])


def _publish_home(ctx: AppContext, client: WebClient, user_id: str) -> None:
    q = queries.my_queue(ctx, user_id)
    try:
        client.views_publish(user_id=user_id, view=cards.home_view(q, ctx.clock.now()))
    except SlackApiError as exc:
        log.warning("views.publish failed: %s", exc.response.get("error"))
