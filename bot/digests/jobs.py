"""The `digests` job: every minute, send whatever digest is due and not yet sent."""

from __future__ import annotations

from bot.context import AppContext
from bot.digests import your_day
from bot.digests.runs import TickResult


def digests_job(ctx: AppContext) -> str:
    result = TickResult()
    your_day.tick(ctx, result)
    return str(result)
