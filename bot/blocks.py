"""Small Block Kit builders shared by views. Keep Slack's limits in one place."""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_PLAIN_TEXT = 150  # button/option text and input labels (Slack truncates or rejects past this)
MAX_VALUE = 2000  # button value
MAX_PRIVATE_METADATA = 3000

Block = dict[str, Any]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int = MAX_PLAIN_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text)}


def section(text: str, *, block_id: str | None = None, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if block_id:
        block["block_id"] = block_id
    if accessory:
        block["accessory"] = accessory
    return block


def fields(pairs: list[tuple[str, str]]) -> Block:
    """A section of up to 10 two-column fields (Slack's limit)."""
    return {
        "type": "section",
        "fields": [mrkdwn(f"*{k}*\n{v}") for k, v in pairs[:10]],
    }


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:10]]}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str, action_id: str, value: dict[str, Any] | str | None = None, style: str | None = None
) -> Block:
    el: Block = {"type": "button", "text": plain(text, 75), "action_id": action_id}
    if value is not None:
        el["value"] = value if isinstance(value, str) else encode(value)
    if style in ("primary", "danger"):
        el["style"] = style
    return el


def actions(elements: list[Block], block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": elements[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def option(text: str, value: str) -> Block:
    return {"text": plain(text, 75), "value": value}


def encode(data: dict[str, Any]) -> str:
    """Compact JSON for button values and private_metadata."""
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if len(raw) > MAX_PRIVATE_METADATA:
        raise ValueError("payload too large for a Slack value")
    return raw


def decode(raw: str | None) -> dict[str, Any]:
    """Parse a value/private_metadata written by encode(); anything else gives {}."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def truncate_blocks(blocks: list[Block], limit: int, more_text: str) -> list[Block]:
    """Keep at most `limit` blocks; the last one says how many were left out."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    left = len(blocks) - len(kept)
    return [*kept, context(more_text.format(n=left))]


def form_value(values: dict[str, Any], block_id: str, action_id: str) -> Any:
    """The submitted value of one input in `view.state.values`, whatever the element type."""
    el = (values.get(block_id) or {}).get(action_id) or {}
    kind = el.get("type")
    if kind in ("static_select", "radio_buttons", "external_select"):
        opt = el.get("selected_option")
        return opt.get("value") if opt else None
    if kind in ("checkboxes", "multi_static_select"):
        return [o.get("value") for o in el.get("selected_options") or []]
    if kind == "datepicker":
        return el.get("selected_date")
    if kind == "timepicker":
        return el.get("selected_time")
    if kind == "datetimepicker":
        return el.get("selected_date_time")
    if kind == "users_select":
        return el.get("selected_user")
    return el.get("value")
