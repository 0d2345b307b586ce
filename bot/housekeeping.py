"""Small maintenance jobs."""

from __future__ import annotations

import datetime as dt

from bot.context import AppContext
from storage.repositories import requests as processed


def purge_processed_requests(ctx: AppContext) -> str:
    cutoff = ctx.clock.now() - dt.timedelta(days=7)
    with ctx.db.session() as session:
        n = processed.purge_before(session, cutoff)
    return f"forgot {n} request ids" if n else ""
