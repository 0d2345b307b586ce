"""Slack listeners. Each feature module has `SUBCOMMANDS` and/or `register(app, ctx)`."""

from __future__ import annotations

from types import ModuleType

from slack_bolt import App

from bot.context import AppContext
from handlers import (
    calendar,
    callbacks,
    commands,
    delegation,
    leads,
    members,
    prescreen,
    queues,
    referrals,
    stats,
    telephony,
)
from handlers.common import Subcommand


def feature_modules() -> list[ModuleType]:
    """The features, in the order their subcommands appear in /prescreen help."""
    return [prescreen, leads, queues, callbacks, referrals, delegation, calendar, stats, members,
            telephony]


def register_all(app: App, ctx: AppContext) -> None:
    subs: list[Subcommand] = []
    for module in feature_modules():
        subs.extend(getattr(module, "SUBCOMMANDS", []))
        reg = getattr(module, "register", None)
        if reg is not None:
            reg(app, ctx)
    commands.register(app, ctx, subs)
