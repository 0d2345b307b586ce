"""The `digests` job: every minute, send whatever digest is due and not yet sent."""

from __future__ import annotations

from bot.context import AppContext
from bot.digests import daily, weekly, your_day
from bot.digests.runs import TickResult


def digests_job(ctx: AppContext) -> str:
    result = TickResult()
    studies = daily.active_studies(ctx)
    daily.tick(ctx, result, studies)
    weekly.tick(ctx, result, studies)
    your_day.tick(ctx, result)
    return str(result)
