"""Listeners for logging calls, candidate status and search, and App Home."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks as bk
from bot import ids, secure_links
from bot.context import AppContext
from bot.errors import DomainError
from bot.prescreen import cards, queries
from bot.prescreen import views as modal
from bot.prescreen.handback import Handback, handback_of, new_handback
from bot.prescreen.workflow import CallLogged, log_call_from_form
from handlers import payloads
from handlers.common import CommandRequest, Subcommand, card_links, open_view, submit_form, tell

log = logging.getLogger("prescreen.handlers.prescreen")


# ----- slash subcommands -----

def _portal(ctx: AppContext, handback: Handback | None, study_key: str | None
            ) -> modal.PortalLinks | None:
    """In portal mode, the modal's link to the add-candidate page (with its handback token)."""
    if not ctx.settings.portal:
        return None
    url = (secure_links.add_candidate_url(ctx.settings, study_key,
                                          handback=handback.token if handback else None)
           if study_key else None)
    return modal.PortalLinks(add_candidate=url)


def log_view(ctx: AppContext, user_id: str, setup: queries.LogModalSetup, state: modal.ModalState,
             handback: Handback | None) -> dict[str, Any]:
    """The log-call modal; in portal mode with the handback's external id and page link."""
    return modal.log_call_modal(setup.studies, state, setup.candidate,
                                portal=_portal(ctx, handback, state.study),
                                external_id=handback.external_id if handback else None)


def _open_log_modal(req: CommandRequest) -> None:
    target = req.args[0] if req.args else None
    setup = queries.log_modal_setup(req.ctx, req.user_id, target)  # DomainError → error handler
    req.ack()
    state = modal.ModalState(study=setup.study_key, ref=setup.candidate.ref if setup.candidate else None,
                             mode="existing" if setup.candidate else "new", channel=req.channel_id)
    handback = (new_handback(req.ctx, req.user_id, req.channel_id) if req.ctx.settings.portal
                else None)
    view = log_view(req.ctx, req.user_id, setup, state, handback)
    open_view(req.client, req.trigger_id, view, respond=req.respond)


def _status(req: CommandRequest) -> None:
    if not req.args:
        req.reply("Which candidate? Try `/prescreen status ALZ-0042`.")
        return
    status = queries.candidate_status(req.ctx, req.user_id, req.args[0])
    card = (secure_links.contact_card_url(req.ctx.settings, status.ref)
            if req.ctx.settings.portal and status.may_view_phi else None)
    req.reply(cards.status_text(status), blocks=cards.status_blocks(status, card_url=card))


def _find(req: CommandRequest) -> None:
    if req.ctx.settings.portal:
        # the query is a phone number or a name: not processed, not repeated, not logged here
        queries.require_find(req.ctx, req.user_id)
        text, blocks = cards.search_on_page(secure_links.search_url(req.ctx.settings))
        req.reply(text, blocks=blocks)
        return
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

def _log_state(view: payloads.ViewRef) -> modal.ModalState:
    meta = bk.parse(view.private_metadata, payloads.LogCallMeta, where=payloads.FROM_LOG,
                    form=True)
    return modal.ModalState(study=meta.s, mode=meta.m, ref=meta.r, channel=meta.c)


def register(app: App, ctx: AppContext) -> None:
    @app.action(ids.STUDY_SELECT)
    @app.action(ids.MODE_SELECT)
    def rerender(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, action, _ = payloads.action(body)
        view = payloads.view_of_action(body, payloads.FROM_LOG)
        state = _log_state(view)
        state.study = modal.selected_study(view.state.values) or state.study
        if action.action_id == ids.MODE_SELECT:
            mode = action.selected_option.value if action.selected_option else None
            state.mode = mode if mode in ("new", "existing") else "new"
        ack()
        setup = queries.log_modal_for_study(ctx, user_id, state.study, state.ref)
        handback = handback_of(ctx, user_id, view.external_id, state.channel)
        new_view = log_view(ctx, user_id, setup, state, handback)
        try:
            client.views_update(view_id=view.id, hash=view.hash, view=new_view)
        except SlackApiError as exc:
            # hash_conflict: a newer update already landed; that one wins
            log.info("views.update skipped: %s", exc.response.get("error"))

    @app.view(ids.LOG_CALL_VIEW)
    def submit(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, view = payloads.submission(body, payloads.FROM_LOG)
        state = _log_state(view)
        values = view.state.values
        study_key = modal.selected_study(values) or state.study
        present = {b.get("block_id") for b in view.blocks}

        def save() -> CallLogged:
            return log_call_from_form(
                ctx, user_id, study_key,
                lambda study: modal.parse_submission(values, state, view.id, user_id, study,
                                                     portal=ctx.settings.portal))

        result = submit_form(
            ack, save, domain_block=ids.STUDY_BLOCK, failure_block=ids.OUTCOME_BLOCK,
            field_blocks=lambda errors: modal.errors_to_blocks(errors, present),
            again="Your entries are still here; press Log call again.", what="log call")
        if result is None:
            return
        card = (secure_links.contact_card_url(ctx.settings, result.ref)
                if ctx.settings.portal else None)
        tell(client, user_id, state.channel, result.summary, cards.logged_blocks(result, card))
        _publish_home(ctx, client, user_id)

    @app.action(re.compile(f"^({ids.HOME_LOG_CALL}|{ids.CALLBACK_LOG})$"))
    def log_from_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, action, channel = payloads.action(body)
        where = payloads.FROM_REMINDER if action.action_id == ids.CALLBACK_LOG else payloads.FROM_HOME
        value = bk.parse(action.value, payloads.CandidateValue, where=where)
        ack()
        try:
            setup = queries.log_modal_setup(ctx, user_id, value.ref)
        except DomainError as exc:
            tell(client, user_id, channel, exc.message, None)
            return
        state = modal.ModalState(study=setup.study_key, mode="existing",
                                 ref=setup.candidate.ref if setup.candidate else None,
                                 channel=channel)
        open_view(client, body.get("trigger_id"), log_view(ctx, user_id, setup, state, None))

    @app.action(re.compile(f"^{ids.OPEN_PAGE_PREFIX}"))
    def page_link(ack: Ack) -> None:
        """A link button to the secure page: Slack opens the URL and tells us; nothing to do."""
        ack()

    @app.action(ids.HOME_REFRESH)
    def refresh(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, _, _ = payloads.action(body)
        ack()
        _publish_home(ctx, client, user_id)

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        user = event.get("user")
        if event.get("tab", "home") == "home" and isinstance(user, str):
            _publish_home(ctx, client, user)


def _publish_home(ctx: AppContext, client: WebClient, user_id: str) -> None:
    q = queries.my_queue(ctx, user_id)
    try:
        client.views_publish(user_id=user_id,
                             view=cards.home_view(q, ctx.clock.now(), card_links(ctx)))
    except SlackApiError as exc:
        log.warning("views.publish failed: %s", exc.response.get("error"))
