"""`/prescreen delegate @someone until 2026-12-20 [STUDY]`, `/prescreen delegate` (list),
`/prescreen delegate cancel`."""

from __future__ import annotations

import datetime as dt

from bot import blocks as bk
from bot.errors import InvalidInput
from bot.leads.service import parse_mention
from bot.referrals import delegation
from handlers.common import CommandRequest, Subcommand

USAGE = "`/prescreen delegate @someone until 2026-12-20` (add a study key to limit it to one study)"


def _delegate(req: CommandRequest) -> None:
    args = req.args
    if not args:
        lines = delegation.listing(req.ctx, actor=req.user_id)
        req.reply(delegation.lines_text(lines, req.user_id))
        return
    if args[0].lower() == "cancel":
        keys = delegation.cancel(req.ctx, actor=req.user_id)
        req.reply(f":white_check_mark: Delegation ended for {', '.join(keys)}: you decide again."
                  if keys else "You have no delegation in force.")
        return
    if len(args) < 3 or args[1].lower() != "until":
        raise InvalidInput(f"Usage: {USAGE}.")
    who = parse_mention(args[0])
    try:
        until = dt.date.fromisoformat(args[2])
    except ValueError:
        raise InvalidInput(f"{bk.code(args[2])} is not a date. Use YYYY-MM-DD, like "
                           "2026-12-20.") from None
    done = delegation.delegate(req.ctx, actor=req.user_id, delegate_id=who, until=until,
                               study_key=args[3] if len(args) > 3 else None)
    text = (f":white_check_mark: <@{done.delegate}> decides your {', '.join(done.studies)} "
            f"referrals until the end of {done.until:%a %b} {done.until.day} (your time), shown as "
            f"\"for <@{req.user_id}>\". `/prescreen delegate cancel` ends it sooner.")
    if done.skipped:
        text += f" Not for {', '.join(done.skipped)}: they are not a member there."
    req.reply(text)


SUBCOMMANDS = [
    Subcommand("delegate", "/prescreen delegate @someone until DATE [STUDY]",
               "let someone approve in your place while you are away (list; cancel)", _delegate),
]
