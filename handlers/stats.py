"""`/prescreen stats [STUDY] [period] [SITE]`: KPIs for the caller's studies, ephemeral."""

from __future__ import annotations

import logging

from bot import kpis
from bot.errors import DomainError
from handlers.common import CommandRequest, Subcommand, domain_text, error_ref, unexpected_text

log = logging.getLogger("prescreen.handlers.stats")
# Figures come from the daily KPI rollups, so any period is answered in the command's own
# response. Only while a study's rollups are not built yet (just after the upgrade, before the
# `kpis` job's first run) does a period over a month get "Counting…" at once and the figures a
# moment later.
DIRECT_DAYS = 31


def _stats(req: CommandRequest) -> None:
    try:
        wanted = kpis.parse_stats_request(req.ctx, req.user_id, req.args)
        if wanted.days <= DIRECT_DAYS or wanted.rollups_ready:
            text, blocks = kpis.render_stats(req.ctx, wanted)
            req.reply(text, blocks=blocks)
            return
    except DomainError as exc:
        req.reply(domain_text(exc))
        return
    req.reply(f":hourglass_flowing_sand: Counting {wanted.days} days of KPIs…")
    try:
        text, blocks = kpis.render_stats(req.ctx, wanted)
    except DomainError as exc:
        req.respond(text=domain_text(exc), response_type="ephemeral")
        return
    except Exception:
        ref = error_ref()
        log.exception("stats failed (ref %s)", ref)
        req.respond(text=unexpected_text(ref), response_type="ephemeral")
        return
    req.respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)


SUBCOMMANDS = [
    Subcommand("stats", kpis.STATS_USAGE,
               "KPIs for your studies: calls, reached, referrals, callbacks, funnel (today, 7d, "
               "30d or dates)", _stats),
]
