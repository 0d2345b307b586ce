"""`/prescreen lead [STUDY]`: one inbound lead (a call or referral that came in), added to the
study's leads in needs_call. Files of leads go through `prescreen-bot leads import`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks as bk
from bot import ids, secure_links
from bot.context import AppContext
from bot.leads import intake
from bot.leads import views as lv
from handlers import payloads
from handlers.common import CommandRequest, Subcommand, by_field, open_view, submit_form, tell

log = logging.getLogger("prescreen.handlers.leads")


def _lead(req: CommandRequest) -> None:
    form = intake.lead_form(req.ctx, req.user_id, req.args[0] if req.args else None)
    if req.ctx.settings.portal:
        # identifiers are entered on the secure page only: no form with name or phone in Slack
        links = [(s.key, secure_links.add_candidate_url(req.ctx.settings, s.key))
                 for s in form.studies if form.study_key in (None, s.key)]
        text, blocks = lv.lead_on_page(links)
        req.reply(text, blocks=blocks)
        return
    req.ack()  # a refusal above goes to the error handler, like every command's
    open_view(req.client, req.trigger_id, lv.lead_modal(form.studies, form.study_key,
                                                        req.channel_id), respond=req.respond)


SUBCOMMANDS = [
    Subcommand("lead", "/prescreen lead [STUDY]",
               "add one inbound lead (it waits in needs_call for its first call)", _lead),
]


def register(app: App, ctx: AppContext) -> None:
    @app.action(ids.LEAD_STUDY_SELECT)
    def study_changed(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, action, _ = payloads.action(body)
        view = payloads.view_of_action(body, payloads.FROM_LEAD)
        meta = bk.parse(view.private_metadata, payloads.LeadMeta, where=payloads.FROM_LEAD,
                        form=True)
        key = action.selected_option.value if action.selected_option else None
        ack()
        new_view = lv.lead_modal(intake.lead_form(ctx, user_id, None).studies, key, meta.c)
        try:
            client.views_update(view_id=view.id, hash=view.hash, view=new_view)
        except SlackApiError as exc:
            log.info("views.update skipped: %s", exc.response.get("error"))

    @app.view(ids.LEAD_VIEW)
    def submit(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, view = payloads.submission(body, payloads.FROM_LEAD)
        meta = bk.parse(view.private_metadata, payloads.LeadMeta, where=payloads.FROM_LEAD,
                        form=True)
        form = lv.parse_lead(view.state.values, meta.s, view.id, user_id)

        added = submit_form(
            ack, lambda: intake.add_lead(ctx, form), domain_block=ids.LEAD_STUDY_BLOCK,
            failure_block=ids.LEAD_PHONE_BLOCK,
            field_blocks=by_field(lv.LEAD_FIELD_BLOCKS, ids.LEAD_PHONE_BLOCK),
            again="Press Add lead again.", what="adding a lead")
        if added is None:
            return
        tell(client, user_id, meta.c, lv.lead_added_text(added), None)
