"""Listeners for the referral card buttons, the reject modal and referral subcommands."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks as bk
from bot import ids
from bot.context import AppContext
from bot.errors import BadPayload, DomainError, InvalidInput
from bot.referrals import views as rv
from bot.referrals import workflow
from handlers import payloads
from handlers.common import (
    CommandRequest,
    Subcommand,
    by_field,
    card_links,
    open_view,
    submit_form,
    tell,
)

log = logging.getLogger("prescreen.handlers.referrals")


def _referral(req: CommandRequest) -> None:
    if len(req.args) < 2:
        req.reply("Usage: `/prescreen referral ALZ-0042 site_contacted` "
                  "(or `visit_scheduled 2026-12-03`).")
        return
    ref, target = req.args[0], req.args[1].lower()
    visit = None
    if len(req.args) > 2:
        try:
            visit = dt.date.fromisoformat(req.args[2])
        except ValueError:
            raise InvalidInput(f"{bk.code(req.args[2])} is not a date. Use YYYY-MM-DD, like "
                               "2026-12-03.") from None
    try:
        result = workflow.advance(req.ctx, actor=req.user_id, ref=ref, to_state=target,
                                  visit_date=visit)
    except workflow.SignatureNeeded as sign:
        req.reply(sign.message, blocks=rv.sign_blocks(sign.ref, sign.approve, sign.url))
        return
    req.reply(f":white_check_mark: {result.message} The channel card is updated.")


def _referrals(req: CommandRequest) -> None:
    if not req.args:
        req.reply("Which study? Try `/prescreen referrals ALZ` or "
                  "`/prescreen referrals ALZ pending_approval`.")
        return
    listing = workflow.list_referrals(req.ctx, actor=req.user_id, study_key=req.args[0],
                                      state=req.args[1].lower() if len(req.args) > 1 else None)
    blocks = rv.list_blocks(listing.study_key, listing.counts, listing.rows, listing.state)
    req.reply(f"{listing.study_key} referrals", blocks=blocks)


SUBCOMMANDS = [
    Subcommand("referral", "/prescreen referral REF STATE [DATE]",
               "move a referral on (site_contacted, visit_scheduled DATE, enrolled…)", _referral),
    Subcommand("referrals", "/prescreen referrals STUDY [STATE]", "referrals with counts per state",
               _referrals),
]


def _ephemeral(respond: Respond, text: str) -> None:
    respond(text=text, response_type="ephemeral", replace_original=False)


# the reject form's fields (InvalidInput.field of bot.referrals.workflow) and their blocks
REJECT_BLOCKS = {"reason": ids.REJECT_REASON_BLOCK, "note": ids.REJECT_TEXT_BLOCK}


def register(app: App, ctx: AppContext) -> None:
    @app.action(ids.REFERRAL_APPROVE)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        user_id, act, _ = payloads.action(body)
        value = bk.parse(act.value, payloads.ReferralValue, where=payloads.FROM_CARD)
        ack()
        try:
            result = workflow.decide(ctx, referral_id=value.id, actor=user_id, approve=True,
                                     expected_version=value.v)
        except workflow.SignatureNeeded as sign:
            respond(text=sign.message, blocks=rv.sign_blocks(sign.ref, sign.approve, sign.url),
                    response_type="ephemeral", replace_original=False)
            return
        except DomainError as exc:
            _ephemeral(respond, f":warning: {exc.message}")
            return
        _ephemeral(respond, f":white_check_mark: {result.message} The coordinator and the site "
                            "are being told.")

    @app.action(ids.REFERRAL_REJECT)
    def reject(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        user_id, act, channel = payloads.action(body)
        value = bk.parse(act.value, payloads.ReferralValue, where=payloads.FROM_CARD)
        ack()
        try:
            choice = workflow.check_can_decide(ctx, referral_id=value.id, actor=user_id)
        except DomainError as exc:
            _ephemeral(respond, f":warning: {exc.message}")
            return
        links = card_links(ctx)
        view = rv.reject_modal(value.id, value.v or 0, choice.ref, channel, choice.reasons,
                               card_url=links(choice.ref) if links else None)
        open_view(client, body.get("trigger_id"), view, respond=respond)

    @app.view(ids.REJECT_VIEW)
    def reject_submitted(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, meta, field = _card_form(body)
        reason = field(ids.REJECT_REASON_BLOCK, ids.REJECT_REASON_SELECT)
        note = None if ctx.settings.portal else field(ids.REJECT_TEXT_BLOCK, ids.REJECT_TEXT_INPUT)

        def reject_it() -> workflow.TransitionResult | workflow.SignatureNeeded:
            try:
                return workflow.decide(ctx, referral_id=meta.id, actor=user_id, approve=False,
                                       expected_version=meta.v or None, reason=reason, note=note)
            except workflow.SignatureNeeded as sign:  # the reason travels to the page as a code
                return sign

        result = submit_form(
            ack, reject_it,
            field_blocks=by_field(REJECT_BLOCKS, ids.REJECT_REASON_BLOCK),
            domain_block=ids.REJECT_REASON_BLOCK, failure_block=ids.REJECT_REASON_BLOCK,
            again="Press Reject again.", what="rejecting a referral")
        if isinstance(result, workflow.SignatureNeeded):
            tell(client, user_id, meta.c, result.message,
                 rv.sign_blocks(result.ref, result.approve, result.url))
        elif result is not None:
            tell(client, user_id, meta.c, f":x: {result.message}", None)

    @app.action(ids.REFERRAL_SIGN)
    def sign_link(ack: Ack) -> None:
        ack()  # a link button: the browser opens the page; nothing to do here

    @app.view(ids.VISIT_VIEW)
    def visit_submitted(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        user_id, meta, field = _card_form(body)
        slot = field(ids.VISIT_SLOT_BLOCK, ids.VISIT_SLOT_SELECT)
        day = field(ids.VISIT_DATE_BLOCK, ids.VISIT_DATE_INPUT)

        def schedule() -> workflow.TransitionResult:
            visit = workflow.visit_date_from(ctx, referral_id=meta.id, slot=slot, day=day)
            return workflow.advance(ctx, actor=user_id, referral_id=meta.id,
                                    to_state="visit_scheduled", expected_version=meta.v,
                                    visit_date=visit)

        # a slot error goes under the slot list only when the form has one (a slot was picked)
        visit_blocks = {"date": ids.VISIT_DATE_BLOCK,
                        **({"slot": ids.VISIT_SLOT_BLOCK} if slot else {})}
        result = submit_form(
            ack, schedule, field_blocks=by_field(visit_blocks, ids.VISIT_DATE_BLOCK),
            domain_block=ids.VISIT_DATE_BLOCK, failure_block=ids.VISIT_DATE_BLOCK,
            again="Press Save again.", what="scheduling a visit")
        if result is not None:
            tell(client, user_id, meta.c, f":calendar: {result.message}", None)

    @app.action(re.compile(f"^{ids.REFERRAL_ADVANCE}:"))
    def advance(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user_id, act, channel = payloads.action(body)
        value = bk.parse(act.value, payloads.ReferralValue, where=payloads.FROM_CARD)
        if value.to is None:
            raise BadPayload(payloads.FROM_CARD, detail="to")
        ack()
        if value.to == "visit_scheduled":
            try:
                choice = workflow.visit_choices(ctx, referral_id=value.id, actor=user_id)
            except DomainError as exc:
                _ephemeral(respond, f":warning: {exc.message}")
                return
            view = rv.visit_modal(choice.referral_id, choice.version, choice.ref, choice.slots,
                                  channel)
            open_view(client, body.get("trigger_id"), view, respond=respond)
            return
        try:
            result = workflow.advance(ctx, actor=user_id, referral_id=value.id,
                                      to_state=value.to, expected_version=value.v)
        except DomainError as exc:
            _ephemeral(respond, f":warning: {exc.message}")
            return
        _ephemeral(respond, f":white_check_mark: {result.message}")


def _card_form(body: dict[str, Any]) -> tuple[str, payloads.ReferralMeta, Callable[[str, str], Any]]:
    """A form opened from a referral card: who submitted it, its typed metadata, and a reader of
    its fields (each checked as the card's forms write them)."""
    user_id, view = payloads.submission(body, payloads.FROM_CARD)
    meta = bk.parse(view.private_metadata, payloads.ReferralMeta, where=payloads.FROM_CARD,
                    form=True)
    values = view.state.values

    def field(block_id: str, action_id: str) -> Any:
        return bk.form_value(values, block_id, action_id, where=payloads.FROM_CARD)

    return user_id, meta, field
