"""`/prescreen next`, `/prescreen queue`, `/prescreen assign` and `/prescreen reason`."""

from __future__ import annotations

from bot.leads import queue, service, views
from bot.leads import reasons as reason_codes
from bot.leads.queue import NextLead
from bot.telephony.connection import enabled as calling_enabled
from bot.telephony.views import with_call_buttons
from handlers.common import CommandRequest, Subcommand, card_links


def _next(req: CommandRequest) -> None:
    result = queue.next_lead(req.ctx, req.user_id, req.args[0] if req.args else None)
    text, blocks = views.next_blocks(result, card_links(req.ctx))
    if isinstance(result, NextLead) and calling_enabled(req.ctx):  # RingCentral: a Call button
        blocks = with_call_buttons(blocks, [result.ref])
    req.reply(text, blocks=blocks)


def _queue(req: CommandRequest) -> None:
    key = req.args[0] if req.args else None
    q = queue.my_work(req.ctx, req.user_id, key, limit=20)
    text, blocks = views.queue_blocks(q, key, card=card_links(req.ctx))
    if calling_enabled(req.ctx):  # RingCentral: Call buttons for the most urgent items
        blocks = with_call_buttons(blocks, [it.ref for it in q.items if not it.window_closed
                                                  and not it.what.startswith("pending")])
    req.reply(text, blocks=blocks)


def _assign(req: CommandRequest) -> None:
    if len(req.args) < 2:
        req.reply("Say which lead and who: `/prescreen assign MDD-0042 @sam`.")
        return
    result = service.assign(req.ctx, actor=req.user_id, ref=req.args[0], target=req.args[1])
    req.reply(result.message)


def _reason(req: CommandRequest) -> None:
    if len(req.args) < 2:
        req.reply("Say which lead and why it waits: `/prescreen reason MDD-0042 "
                  f"waiting_on_records`. Reasons: {reason_codes.choices_text()}.")
        return
    req.reply(service.set_reason(req.ctx, actor=req.user_id, ref=req.args[0],
                                 text=" ".join(req.args[1:])))


SUBCOMMANDS = [
    Subcommand("next", "/prescreen next [STUDY]", "the lead to call now: callbacks due, then new "
               "leads oldest first, then follow-ups", _next),
    Subcommand("queue", "/prescreen queue [STUDY]", "everything you own, most urgent first, with "
               "why it waits", _queue, aliases=("q",)),
    Subcommand("assign", "/prescreen assign REF @someone", "give a lead to a study coordinator",
               _assign),
    Subcommand("reason", "/prescreen reason REF REASON", "say why a lead waits (no_response, "
               "waiting_on_records, scheduling_conflict, needs_review, likely_not_a_fit)", _reason),
]
