"""/prescreen subcommand router: parse, find the subcommand, call it. No business rules here."""

from __future__ import annotations

import shlex
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks as bk
from bot import ids
from bot.context import AppContext
from bot.help import help_blocks, help_text
from handlers.common import CommandRequest, Subcommand
from handlers.payloads import SlashCommand


def _help(req: CommandRequest, intro: str | None = None) -> None:
    entries = [(s.usage, s.summary) for s in req.ctx.extras["subcommands"]]
    req.reply(help_text(entries), blocks=help_blocks(entries, intro))


HELP = Subcommand("help", "/prescreen help", "this list", _help, aliases=("?", "-h", "--help"))


def split_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def register(app: App, ctx: AppContext, subcommands: list[Subcommand]) -> None:
    table: dict[str, Subcommand] = {}
    for sub in [*subcommands, HELP]:
        for name in (sub.name, *sub.aliases):
            table[name] = sub
    ctx.extras["subcommands"] = [*subcommands, HELP]
    default = table.get("") or HELP

    @app.command(ids.COMMAND)
    def prescreen(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        command = bk.validated(body, SlashCommand, where="Slack")
        text = command.text.strip()
        args = split_args(text)
        name = args[0].lower() if args else ""
        req = CommandRequest(
            ctx=ctx,
            user_id=command.user_id,
            channel_id=command.channel_id or "",
            args=args[1:],
            text=text,
            trigger_id=command.trigger_id,
            ack=ack,
            respond=respond,
            client=client,
            body=body,
        )
        sub = table.get(name) if name else default
        if sub is None:
            req.args = args
            _help(req, intro=f":grey_question: I don't know {bk.code_word(args[0], 'that')}. "
                             "Here is what I can do:")
            return
        sub.run(req)
