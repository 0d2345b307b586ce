"""Block Kit checks with Slack's documented limits, reported the way the Web API reports them.

Each problem is a string like ``[ERROR] must be less than 3001 characters
[json-pointer:/blocks/0/text/text]``, the form Slack puts in ``response_metadata.messages``.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

MESSAGE_BLOCK_LIMIT = 50
SURFACE_BLOCK_LIMIT = 100
SECTION_TEXT_LIMIT = 3000
SECTION_FIELD_LIMIT = 2000
SECTION_FIELDS_MAX = 10
HEADER_TEXT_LIMIT = 150
MARKDOWN_BLOCK_LIMIT = 12000
BLOCK_ID_LIMIT = 255
ACTION_ID_LIMIT = 255
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
URL_LIMIT = 3000
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
PLACEHOLDER_LIMIT = 150
LABEL_LIMIT = 2000
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
SELECT_OPTIONS_MAX = 100
CHOICE_OPTIONS_MAX = 10
OVERFLOW_OPTIONS = (1, 5)
PLAIN_TEXT_INPUT_MAX = 3000

TEXT_TYPES = {"plain_text", "mrkdwn"}
COMMON_BLOCKS = {"section", "divider", "image", "actions", "context", "header", "input",
                 "rich_text", "video"}
MESSAGE_BLOCKS = COMMON_BLOCKS | {"file", "markdown", "table"}
SELECTS = {"static_select", "external_select", "users_select", "conversations_select",
           "channels_select"}
MULTI_SELECTS = {"multi_" + s for s in SELECTS}
INPUT_ELEMENTS = (
    {"plain_text_input", "number_input", "email_text_input", "url_text_input", "checkboxes",
     "radio_buttons", "datepicker", "timepicker", "datetimepicker", "file_input",
     "rich_text_input"}
    | SELECTS | MULTI_SELECTS
)
INTERACTIVE_ELEMENTS = (INPUT_ELEMENTS - {"file_input"}) | {"button", "overflow",
                                                             "workflow_button"}
ACCESSORY_ELEMENTS = INTERACTIVE_ELEMENTS | {"image"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _err(msg: str, pointer: str) -> str:
    return f"[ERROR] {msg} [json-pointer:{pointer}]"


def _too_long(limit: int, pointer: str) -> str:
    return _err(f"must be less than {limit + 1} characters", pointer)


def check_text(obj: Any, pointer: str, *, limit: int, plain_only: bool = False,
               required: bool = True) -> list[str]:
    """A composition text object: ``{"type": "plain_text"|"mrkdwn", "text": "..."}``."""
    if obj is None:
        return [_err("missing required field: text", pointer)] if required else []
    if not isinstance(obj, dict):
        return [_err("expected object", pointer)]
    out: list[str] = []
    kind = obj.get("type")
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    if kind not in allowed:
        out.append(_err("must be a valid enum value", pointer + "/type"))
    text = obj.get("text")
    if not isinstance(text, str):
        out.append(_err("expected string", pointer + "/text"))
    elif not text:
        out.append(_err("must be more than 0 characters", pointer + "/text"))
    elif len(text) > limit:
        out.append(_too_long(limit, pointer + "/text"))
    return out


def _check_option(opt: Any, pointer: str) -> list[str]:
    if not isinstance(opt, dict):
        return [_err("expected object", pointer)]
    out = check_text(opt.get("text"), pointer + "/text", limit=OPTION_TEXT_LIMIT)
    value = opt.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > OPTION_VALUE_LIMIT):
        out.append(_too_long(OPTION_VALUE_LIMIT, pointer + "/value"))
    return out


def _check_options(options: Any, pointer: str, *, low: int, high: int) -> list[str]:
    if not isinstance(options, list):
        return [_err("expected array", pointer)]
    out: list[str] = []
    if len(options) < low:
        out.append(_err(f"must provide at least {low} items", pointer))
    if len(options) > high:
        out.append(_err(f"no more than {high} items allowed", pointer))
    for i, opt in enumerate(options):
        out += _check_option(opt, f"{pointer}/{i}")
    return out


def check_element(el: Any, pointer: str, *, allowed: set[str]) -> list[str]:
    """An interactive (or image) element inside a block."""
    if not isinstance(el, dict):
        return [_err("expected object", pointer)]
    kind = el.get("type")
    if kind not in allowed:
        return [_err("must be a valid enum value", pointer + "/type")]
    out: list[str] = []
    action_id = el.get("action_id")
    if action_id is not None and (not isinstance(action_id, str)
                                  or len(action_id) > ACTION_ID_LIMIT):
        out.append(_too_long(ACTION_ID_LIMIT, pointer + "/action_id"))
    if "placeholder" in el:
        out += check_text(el["placeholder"], pointer + "/placeholder", limit=PLACEHOLDER_LIMIT,
                          plain_only=True)
    if kind == "button":
        out += check_text(el.get("text"), pointer + "/text", limit=BUTTON_TEXT_LIMIT,
                          plain_only=True)
        value = el.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > BUTTON_VALUE_LIMIT):
            out.append(_too_long(BUTTON_VALUE_LIMIT, pointer + "/value"))
        url = el.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > URL_LIMIT):
            out.append(_too_long(URL_LIMIT, pointer + "/url"))
        if "style" in el and el["style"] not in {"primary", "danger"}:
            out.append(_err("must be a valid enum value", pointer + "/style"))
    elif kind == "image":
        if not el.get("alt_text"):
            out.append(_err("missing required field: alt_text", pointer))
        if not el.get("image_url") and not el.get("slack_file"):
            out.append(_err("missing required field: image_url", pointer))
    elif kind in {"static_select", "multi_static_select"}:
        if "option_groups" in el:
            groups = el["option_groups"]
            if not isinstance(groups, list):
                out.append(_err("expected array", pointer + "/option_groups"))
            else:
                for g, group in enumerate(groups):
                    gp = f"{pointer}/option_groups/{g}"
                    out += check_text((group or {}).get("label"), gp + "/label",
                                      limit=OPTION_TEXT_LIMIT, plain_only=True)
                    out += _check_options((group or {}).get("options"), gp + "/options",
                                          low=1, high=SELECT_OPTIONS_MAX)
        else:
            out += _check_options(el.get("options"), pointer + "/options", low=1,
                                  high=SELECT_OPTIONS_MAX)
    elif kind in {"checkboxes", "radio_buttons"}:
        out += _check_options(el.get("options"), pointer + "/options", low=1,
                              high=CHOICE_OPTIONS_MAX)
    elif kind == "overflow":
        out += _check_options(el.get("options"), pointer + "/options", low=OVERFLOW_OPTIONS[0],
                              high=OVERFLOW_OPTIONS[1])
    elif kind == "datepicker":
        initial = el.get("initial_date")
        if initial is not None and not (isinstance(initial, str) and _DATE.match(initial)):
            out.append(_err("must match format YYYY-MM-DD", pointer + "/initial_date"))
    elif kind == "timepicker":
        initial = el.get("initial_time")
        if initial is not None and not (isinstance(initial, str) and _TIME.match(initial)):
            out.append(_err("must match format HH:mm", pointer + "/initial_time"))
    elif kind == "plain_text_input":
        max_length = el.get("max_length")
        if max_length is not None and (not isinstance(max_length, int)
                                       or not 1 <= max_length <= PLAIN_TEXT_INPUT_MAX):
            out.append(_err(f"must be less than {PLAIN_TEXT_INPUT_MAX + 1}",
                            pointer + "/max_length"))
        initial = el.get("initial_value")
        if isinstance(initial, str) and len(initial) > PLAIN_TEXT_INPUT_MAX:
            out.append(_too_long(PLAIN_TEXT_INPUT_MAX, pointer + "/initial_value"))
    elif kind == "number_input" and not isinstance(el.get("is_decimal_allowed"), bool):
        out.append(_err("missing required field: is_decimal_allowed", pointer))
    return out


def _check_block(block: dict[str, Any], pointer: str, allowed_blocks: set[str]) -> list[str]:
    kind = block.get("type")
    if kind not in allowed_blocks:
        return [_err("must be a valid enum value", pointer + "/type")]
    out: list[str] = []
    if kind == "section":
        if block.get("text") is None and block.get("fields") is None:
            out.append(_err("must provide either text or fields", pointer))
        if block.get("text") is not None:
            out += check_text(block["text"], pointer + "/text", limit=SECTION_TEXT_LIMIT)
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, list):
                out.append(_err("expected array", pointer + "/fields"))
            else:
                if len(fields) > SECTION_FIELDS_MAX:
                    out.append(_err(f"no more than {SECTION_FIELDS_MAX} items allowed",
                                    pointer + "/fields"))
                for i, f in enumerate(fields):
                    out += check_text(f, f"{pointer}/fields/{i}", limit=SECTION_FIELD_LIMIT)
        if block.get("accessory") is not None:
            out += check_element(block["accessory"], pointer + "/accessory",
                                 allowed=ACCESSORY_ELEMENTS)
    elif kind == "header":
        out += check_text(block.get("text"), pointer + "/text", limit=HEADER_TEXT_LIMIT,
                          plain_only=True)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not text:
            out.append(_err("missing required field: text", pointer))
        elif len(text) > MARKDOWN_BLOCK_LIMIT:
            out.append(_too_long(MARKDOWN_BLOCK_LIMIT, pointer + "/text"))
    elif kind == "image":
        if not block.get("alt_text"):
            out.append(_err("missing required field: alt_text", pointer))
        if not block.get("image_url") and not block.get("slack_file"):
            out.append(_err("missing required field: image_url", pointer))
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            out.append(_err("must provide at least 1 items", pointer + "/elements"))
        else:
            if len(elements) > CONTEXT_ELEMENTS_MAX:
                out.append(_err(f"no more than {CONTEXT_ELEMENTS_MAX} items allowed",
                                pointer + "/elements"))
            for i, el in enumerate(elements):
                ep = f"{pointer}/elements/{i}"
                if isinstance(el, dict) and el.get("type") == "image":
                    out += check_element(el, ep, allowed={"image"})
                else:
                    out += check_text(el, ep, limit=SECTION_TEXT_LIMIT)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            out.append(_err("must provide at least 1 items", pointer + "/elements"))
        else:
            if len(elements) > ACTIONS_ELEMENTS_MAX:
                out.append(_err(f"no more than {ACTIONS_ELEMENTS_MAX} items allowed",
                                pointer + "/elements"))
            seen: set[str] = set()
            for i, el in enumerate(elements):
                out += check_element(el, f"{pointer}/elements/{i}",
                                     allowed=INTERACTIVE_ELEMENTS)
                aid = el.get("action_id") if isinstance(el, dict) else None
                if isinstance(aid, str):
                    if aid in seen:
                        out.append(_err("action_id must be unique within the block",
                                        f"{pointer}/elements/{i}/action_id"))
                    seen.add(aid)
    elif kind == "input":
        out += check_text(block.get("label"), pointer + "/label", limit=LABEL_LIMIT,
                          plain_only=True)
        if block.get("hint") is not None:
            out += check_text(block["hint"], pointer + "/hint", limit=LABEL_LIMIT,
                              plain_only=True)
        if block.get("element") is None:
            out.append(_err("missing required field: element", pointer))
        else:
            out += check_element(block["element"], pointer + "/element", allowed=INPUT_ELEMENTS)
    elif kind == "rich_text" and not isinstance(block.get("elements"), list):
        out.append(_err("missing required field: elements", pointer))
    return out


def check_blocks(blocks: Any, pointer: str, *, limit: int, surface: str) -> list[str]:
    """All problems with a ``blocks`` array for a surface ("message", "modal" or "home")."""
    if not isinstance(blocks, list):
        return [_err("expected array", pointer)]
    out: list[str] = []
    if len(blocks) > limit:
        out.append(_err(f"no more than {limit} items allowed", pointer))
    allowed = MESSAGE_BLOCKS if surface == "message" else COMMON_BLOCKS
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        bp = f"{pointer}/{i}"
        if not isinstance(block, dict):
            out.append(_err("expected object", bp))
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > BLOCK_ID_LIMIT:
                out.append(_too_long(BLOCK_ID_LIMIT, bp + "/block_id"))
            elif block_id in seen:
                out.append(_err(f"duplicate block_id: {block_id}", bp + "/block_id"))
            else:
                seen.add(block_id)
        out += _check_block(block, bp, allowed)
    return out


def _random_id(length: int = 5) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def with_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``blocks`` with the block_ids and action_ids Slack fills in when absent."""
    out: list[dict[str, Any]] = []
    for block in blocks:
        b = dict(block)
        b.setdefault("block_id", _random_id())
        if isinstance(b.get("elements"), list) and b.get("type") == "actions":
            b["elements"] = [_with_action_id(e) for e in b["elements"]]
        for key in ("element", "accessory"):
            if isinstance(b.get(key), dict):
                b[key] = _with_action_id(b[key])
        out.append(b)
    return out


def _with_action_id(el: Any) -> Any:
    if not isinstance(el, dict) or el.get("type") == "image":
        return el
    e = dict(el)
    e.setdefault("action_id", _random_id(4))
    return e


def block_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements of one block."""
    found: list[dict[str, Any]] = []
    for key in ("element", "accessory"):
        if isinstance(block.get(key), dict):
            found.append(block[key])
    if block.get("type") == "actions" and isinstance(block.get("elements"), list):
        found += [e for e in block["elements"] if isinstance(e, dict)]
    return found
