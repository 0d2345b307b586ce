"""Slack's `user_change` event: a user deactivated in the workspace loses access at once."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.context import AppContext
from bot.members import service


def register(app: App, ctx: AppContext) -> None:
    @app.event("user_change")
    def user_changed(event: dict[str, Any]) -> None:
        user = event.get("user")
        if isinstance(user, dict):
            service.on_slack_user_change(ctx, user)
