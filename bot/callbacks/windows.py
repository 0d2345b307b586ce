"""Permitted calling windows (design.md §5)."""

from __future__ import annotations

import datetime as dt

from bot.context import AppContext
from storage.models import Candidate, Study


def window_problem(ctx: AppContext, *, study: Study, candidate: Candidate | None, tz_name: str,
                   due_at: dt.datetime) -> str | None:
    """A user-facing sentence when `due_at` may not be used for a call, else None."""
    return None
