"""Shared listener plumbing: the command request object and error rendering."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.context import AppContext
from bot.errors import DomainError

log = logging.getLogger("prescreen.handlers")

T = TypeVar("T")


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


def submit_form(ack: Ack, submit: Callable[[], T], *,
                field_blocks: Callable[[dict[str, str]], dict[str, str]], domain_block: str,
                failure_block: str, again: str, what: str) -> T | None:
    """Run a modal submission and ack it: inline errors for bad fields (FormErrors), for a
    rule the workflow refused (DomainError, under `domain_block`) and for anything unexpected
    (a ref to quote, under `failure_block`, the form kept open). None unless it succeeded."""
    from bot.prescreen.workflow import FormErrors

    try:
        result = submit()
    except FormErrors as exc:
        ack(response_action="errors", errors=field_blocks(exc.errors))
        return None
    except DomainError as exc:
        ack(response_action="errors", errors={domain_block: exc.message})
        return None
    except Exception:
        ref = error_ref()
        log.exception("%s failed ref=%s", what, ref)
        ack(response_action="errors",
            errors={failure_block: f"Not saved: something went wrong (ref {ref}). {again}"})
        return None
    ack()
    return result


def domain_text(err: DomainError) -> str:
    return f":warning: {err.message}"


def open_view(client: WebClient, trigger_id: str | None, view: dict[str, Any],
              respond: Any = None) -> None:
    """views.open; if Slack refuses (e.g. the 3-second trigger expired) tell the user what to do."""
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else "unknown"
        log.warning("views.open failed: %s", error)
        if respond is not None and error in ("expired_trigger_id", "exchanged_trigger_id",
                                             "invalid_trigger_id"):
            respond(text="Slack took too long to open the form. Type the command again.",
                    response_type="ephemeral")
        elif respond is not None:
            respond(text=unexpected_text(error_ref()), response_type="ephemeral")


def tell(client: WebClient, user_id: str, channel: str | None, text: str,
         blocks: list[dict[str, Any]] | None) -> None:
    """Ephemeral in the channel the user worked from; a DM when that is not possible."""
    if channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user_id, text=text, blocks=blocks)
            return
        except SlackApiError as exc:
            log.info("ephemeral not possible (%s); sending a DM", exc.response.get("error"))
    try:
        dm = client.conversations_open(users=user_id)["channel"]["id"]
        client.chat_postMessage(channel=dm, text=text, blocks=blocks)
    except SlackApiError as exc:
        log.warning("could not tell the user: %s", exc.response.get("error"))
