"""Small Block Kit builders shared by views. Keep Slack's limits in one place."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.errors import BadPayload

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


def link_button(text: str, url: str, action_id: str, style: str | None = None) -> Block:
    """A button that opens `url` (Slack still sends the app a block_actions for it)."""
    el: Block = {"type": "button", "text": plain(text, 75), "url": url, "action_id": action_id}
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


def input_block(block_id: str, label: str, element: Block, *, optional: bool = False,
           hint: str | None = None, dispatch: bool = False) -> Block:
    """An input block around `element` (a modal field)."""
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, 2000),
                       "element": element, "optional": optional}
    if hint:
        block["hint"] = plain(hint, 2000)
    if dispatch:
        block["dispatch_action"] = True
    return block


def static_select(action_id: str, options: list[tuple[str, str]], placeholder: str,
            initial: str | None = None) -> Block:
    """A static select of (value, text) options, the first 100, with `initial` chosen."""
    opts = [option(text, value) for value, text in options][:100]
    el: Block = {"type": "static_select", "action_id": action_id, "options": opts,
                    "placeholder": plain(placeholder)}
    chosen = next((o for o in opts if o["value"] == initial), None)
    if chosen:
        el["initial_option"] = chosen
    return el


def encode(data: dict[str, Any]) -> str:
    """Compact JSON for button values and private_metadata."""
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if len(raw) > MAX_PRIVATE_METADATA:
        raise ValueError("payload too large for a Slack value")
    return raw


def decode(raw: str | None) -> dict[str, Any]:
    """Lenient read of a value written by encode() ({} for anything else); listeners use parse()."""
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


# ----- reading what Slack sends back: typed, strict, one helper -----

MAX_ID = 2**31 - 1  # ids are 32-bit integers in every database we run on
MAX_INPUT = 3000  # Slack's longest plain_text_input value

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Version = Annotated[int, Field(ge=0, le=MAX_ID)]
SlackId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,32}$")]
RefCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,16}-[0-9]{1,9}$")]
StudyKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,16}$")]
Word = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]

M = TypeVar("M", bound="Payload")


class Payload(BaseModel):
    """A small typed value carried in a button value or private_metadata. Strict: a number is
    a JSON number (not a string, not a bool), unknown keys are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def parse(raw: Any, model: type[M], *, where: str, form: bool = False) -> M:
    """The one way a listener reads a button value or private_metadata written by encode().
    Anything else (not a string, not JSON, not an object, missing or mistyped fields, numbers
    out of range, too long) raises BadPayload, which becomes a refusal, never a 500."""
    if raw is None or raw == "":
        data: Any = {}
    elif not isinstance(raw, str) or len(raw) > MAX_PRIVATE_METADATA:
        raise BadPayload(where, form=form, detail="not a short string")
    else:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadPayload(where, form=form, detail="not JSON") from None
    if not isinstance(data, dict):
        raise BadPayload(where, form=form, detail="not an object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadPayload(where, form=form, detail=_fields(exc)) from None


def validated(data: Any, model: type[M], *, where: str, form: bool = False) -> M:
    """Like parse(), for a structure Slack already sent as JSON (an envelope, a view state)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadPayload(where, form=form, detail=_fields(exc)) from None


_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def _fields(exc: ValidationError) -> str:
    """Which fields were wrong, for one quiet log line: our own field names only; keys that
    came from the payload (block ids, anything typed) show as *, values never."""
    def name(part: object) -> str:
        if isinstance(part, int):
            return str(part)
        return part if isinstance(part, str) and _FIELD_NAME.match(part) else "*"

    return ", ".join(sorted({".".join(name(p) for p in e["loc"][:3]) or "value"
                             for e in exc.errors()}))[:200]


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIME = re.compile(r"^[0-9]{2}:[0-9]{2}$")
_USER = re.compile(r"^[A-Z0-9]{2,32}$")


def form_value(values: Any, block_id: str, action_id: str, *, where: str = "where you started"
               ) -> Any:
    """The submitted value of one input in `view.state.values`, whatever the element type: a
    string, a list of strings (checkboxes), or None. A value of the wrong shape, type or size
    (nothing our views render could send it) raises BadPayload."""

    def bad(why: str) -> BadPayload:
        return BadPayload(where, form=True, block=block_id, detail=f"{block_id}: {why}")

    def text(value: Any, pattern: re.Pattern[str] | None = None) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > MAX_INPUT or (
                pattern is not None and not pattern.match(value)):
            raise bad("not a valid value")
        return value

    def option_value(opt: Any) -> str | None:
        if opt is None:
            return None
        if not isinstance(opt, dict):
            raise bad("option is not an object")
        return text(opt.get("value"))

    if not isinstance(values, dict):
        raise bad("state is not an object")
    block = values.get(block_id)
    if block is None:
        return None
    if not isinstance(block, dict):
        raise bad("block is not an object")
    el = block.get(action_id)
    if el is None:
        return None
    if not isinstance(el, dict):
        raise bad("element is not an object")
    kind = el.get("type")
    if kind in ("static_select", "radio_buttons", "external_select"):
        return option_value(el.get("selected_option"))
    if kind in ("checkboxes", "multi_static_select"):
        opts = el.get("selected_options")
        if opts is None:
            return []
        if not isinstance(opts, list) or len(opts) > 100:
            raise bad("options are not a list")
        return [option_value(o) for o in opts]
    if kind == "datepicker":
        return text(el.get("selected_date"), _DATE)
    if kind == "timepicker":
        return text(el.get("selected_time"), _TIME)
    if kind == "datetimepicker":
        stamp = el.get("selected_date_time")
        if stamp is not None and (not isinstance(stamp, int) or isinstance(stamp, bool)):
            raise bad("not a time stamp")
        return stamp
    if kind == "users_select":
        return text(el.get("selected_user"), _USER)
    return text(el.get("value"))


# ----- writing user-entered text into mrkdwn -----

def escape(text: object) -> str:
    """User-entered text made inert for a mrkdwn field (Slack's documented escaping): no
    `<!channel>`, `<!here>`, `<!subteam^…>`, `<@U…>` mention and no `<url|label>` link can
    come out of it; it reads as typed."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def echo(text: object, limit: int = 40) -> str:
    """User-entered text repeated back in a sentence: one line, clipped, escaped."""
    return escape(clip(" ".join(str(text).split()), limit))


_REF_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,9}-\d{1,8}")
_SLUG_LIKE = re.compile(r"[a-z][a-z0-9_\-]{0,29}|[A-Z][A-Z0-9_\-]{0,29}")


def echo_ref(text: object) -> str:
    """A reference code the user typed, repeated only when it looks like one: what was typed in
    its place may be a phone number or a name, which no reply repeats."""
    typed = str(text).strip()
    return echo(typed.upper()) if _REF_LIKE.fullmatch(typed) else "with that code"


def code_word(text: object, instead: str = "That") -> str:
    """A command word the user typed (a reason, a state, a study key, a member), quoted back only
    when it is one all-lowercase or all-uppercase word like the words it should have been; else
    `instead`, so free text that may name a patient (`Margaret`, a phone) is never repeated."""
    typed = str(text).strip()
    return code(typed) if _SLUG_LIKE.fullmatch(typed) else instead


def code(text: object, limit: int = 40) -> str:
    """User-entered text quoted back as inline code, escaped and clipped: `like this`."""
    return "`" + echo(text, limit).replace("`", "'") + "`"
