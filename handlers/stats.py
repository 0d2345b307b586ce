"""`/prescreen stats [STUDY] [period] [SITE]`: KPIs for the caller's studies, ephemeral."""

from __future__ import annotations

from bot import kpis
from bot.errors import DomainError
from handlers.common import CommandRequest, Subcommand, domain_text


def _stats(req: CommandRequest) -> None:
    try:
        text, blocks = kpis.stats_for_user(req.ctx, req.user_id, req.args)
    except DomainError as exc:
        req.reply(domain_text(exc))
        return
    req.reply(text, blocks=blocks)


SUBCOMMANDS = [
    Subcommand("stats", kpis.STATS_USAGE,
               "KPIs for your studies: calls, reached, referrals, callbacks, funnel (today, 7d, "
               "30d or dates)", _stats),
]
