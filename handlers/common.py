"""Shared listener plumbing: the command request object and error rendering."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import secure_links
from bot.context import AppContext
from bot.errors import BadPayload, DomainError, InvalidInput
from bot.forms import FormErrors

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


def card_links(ctx: AppContext) -> Callable[[str], str] | None:
    """Portal mode: each candidate's contact card URL (by reference code) for link buttons;
    None with PHI_SURFACE=slack."""
    if not ctx.settings.portal:
        return None
    return lambda ref: secure_links.contact_card_url(ctx.settings, ref)


def error_ref() -> str:
    return secrets.token_hex(3)


def unexpected_text(ref: str) -> str:
    return (
        f"Something went wrong on our side (ref {ref}). Nothing was lost; try again. "
        "If it keeps happening, send the ref to your admin."
    )


def by_field(blocks: Mapping[str, str], default: str) -> Callable[[dict[str, str]], dict[str, str]]:
    """Field name → block id through `blocks`; a field the form has no block for goes under
    `default`. The usual `field_blocks` for `submit_form`."""
    def to_blocks(errors: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, message in errors.items():
            block = blocks.get(name, default)
            out[block] = f"{out[block]} {message}" if block in out else message
        return out
    return to_blocks


def submit_form(ack: Ack, submit: Callable[[], T], *,
                field_blocks: Callable[[dict[str, str]], dict[str, str]], domain_block: str,
                failure_block: str, again: str, what: str) -> T | None:
    """Run a modal submission and ack it. The one error path of every form: errors that name a
    field (FormErrors' keys, InvalidInput.field) go under that field's block through
    `field_blocks`; any other rule the use case refused (DomainError, a damaged form
    included) under `domain_block`; anything unexpected gets a ref to quote, under
    `failure_block`, the form kept open. Never by the message text. None unless it succeeded."""
    try:
        result = submit()
    except FormErrors as exc:
        ack(response_action="errors", errors=field_blocks(exc.errors))
        return None
    except DomainError as exc:
        ack(response_action="errors", errors=_error_blocks(exc, field_blocks, domain_block))
        return None
    except Exception:
        ref = error_ref()
        log.exception("%s failed ref=%s", what, ref)
        ack(response_action="errors",
            errors={failure_block: f"Not saved: something went wrong (ref {ref}). {again}"})
        return None
    ack()
    return result


def _error_blocks(exc: DomainError, field_blocks: Callable[[dict[str, str]], dict[str, str]],
                  domain_block: str) -> dict[str, str]:
    if isinstance(exc, InvalidInput) and exc.field:
        return field_blocks({exc.field: exc.message})
    return {domain_block: exc.message}


def refuse(error: BadPayload, body: dict[str, Any], response: Any, respond: Any,
           client: WebClient, ack: Any = None) -> None:
    """The refusal for a damaged or forged payload, in the shape its request expects: an
    ephemeral answer to a command, an inline error in a form, an ephemeral note after a click.
    When the request is not acknowledged yet, the refusal is the acknowledgement itself."""
    text = domain_text(error)
    if "command" in body:
        if response is not None:
            _answer(response, {"response_type": "ephemeral", "text": text})
        elif respond is not None and body.get("response_url"):
            respond(text=text, response_type="ephemeral")
        return
    if body.get("type") == "view_submission":
        if response is not None:
            _answer(response, form_answer(error.message, body.get("view"), error.block))
        return
    if response is not None:
        _answer(response, None)
        if ack is not None:
            ack()  # answer Slack now; the note below may take a moment
    if body.get("type") != "block_actions":
        return
    user = (body.get("user") or {}).get("id")
    if respond is not None and body.get("response_url"):
        try:
            respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:  # best effort; the log has the refusal
            log.warning("could not deliver the refusal")
    elif isinstance(user, str):
        channel = (body.get("channel") or {}).get("id")
        tell(client, user, channel if isinstance(channel, str) else None, text, None)


def answer_unacknowledged(response: Any, body: dict[str, Any], text: str, ack: Any) -> bool:
    """A listener failed before acknowledging a click or a form: answer Slack now (200; a form
    stays open with `text` in it) instead of letting the request fail. False for other kinds."""
    if response is None:
        return False
    if body.get("type") == "view_submission":
        _answer(response, form_answer(text, body.get("view")))
        return True
    if body.get("type") == "block_actions":
        _answer(response, None)
        if ack is not None:
            ack()
        return False  # the message itself still goes to the user
    return False


def _answer(response: Any, payload: dict[str, Any] | None) -> None:
    response.status = 200
    response.body = json.dumps(payload) if payload is not None else ""
    if payload is not None:
        response.headers["content-type"] = ["application/json;charset=utf-8"]


def form_answer(text: str, view: Any, block: str | None = None) -> dict[str, Any]:
    """`text` inline under `block` (or the form's first input); a form with no input left to
    show it under is replaced by a short note."""
    blocks = view.get("blocks") if isinstance(view, dict) else None
    inputs = [b.get("block_id") for b in blocks or [] if isinstance(b, dict)
              and b.get("type") == "input" and isinstance(b.get("block_id"), str)]
    if inputs:
        return {"response_action": "errors",
                "errors": {block if block in inputs else inputs[0]: text}}
    return {"response_action": "update", "view": {
        "type": "modal", "title": {"type": "plain_text", "text": "prescreen-bot"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}}


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
