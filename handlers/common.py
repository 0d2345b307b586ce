"""Shared listener plumbing: the command request object and error rendering."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from bot.context import AppContext
from bot.errors import DomainError

log = logging.getLogger("prescreen.handlers")


@dataclass
class CommandRequest:
    ctx: AppContext
    user_id: str
    channel_id: str
    args: list[str]
    text: str
    trigger_id: str | None
    ack: Ack
    respond: Respond
    client: WebClient
    body: dict[str, Any] = field(repr=False, default_factory=dict)

    def reply(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Ephemeral answer via the HTTP response (fast, before Slack's 3 s limit)."""
        self.ack(response_type="ephemeral", text=text, blocks=blocks)


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    run: Callable[[CommandRequest], None]
    aliases: tuple[str, ...] = ()


def error_ref() -> str:
    return secrets.token_hex(3)


def unexpected_text(ref: str) -> str:
    return (
        f"Something went wrong on our side (ref {ref}). Nothing was lost; try again. "
        "If it keeps happening, send the ref to your admin."
    )


def domain_text(err: DomainError) -> str:
    return f":warning: {err.message}"
