"""What Slack sends us, parsed into typed values at the edge.

Every listener reads its button value or private_metadata with `bk.parse(raw, Model, where=…)`
and its envelope (user, action, view) through the helpers here, before it acks. Anything our
own views could not have produced raises BadPayload; the app's one error handler turns that
into a refusal ("That button is out of date or damaged — open it again from …", or an inline
error in a form), logged as one INFO line without the payload.

The envelope check runs as a global middleware, before Bolt matches listeners, so a payload
whose shape would trip the matchers (no actions, a view without a callback id, a user that is
not an object) is refused with a 400 instead of failing inside the framework.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot import blocks as bk
from bot.blocks import Id, Payload, RefCode, SlackId, StudyKey, Version, Word
from bot.errors import BadPayload

log = logging.getLogger("prescreen.handlers.payloads")

# where the user opens a button or form again, for the refusal
FROM_CARD = "the referral card in the study channel"
FROM_REMINDER = "the reminder in your DM with prescreen-bot (or `/prescreen callbacks`)"
FROM_HOME = "your App Home or `/prescreen queue`"
FROM_LOG = "`/prescreen log`"
FROM_LEAD = "`/prescreen lead`"

Text = Annotated[str, StringConstraints(max_length=bk.MAX_INPUT)]
ShortText = Annotated[str, StringConstraints(max_length=255)]


# ----- envelopes (checked by the middleware; listeners read them through these models) -----

class UserRef(Payload):
    id: SlackId


class ChannelRef(Payload):
    id: SlackId | None = None


class OptionRef(Payload):
    value: Text | None = None


class ActionRef(Payload):
    action_id: ShortText
    block_id: ShortText | None = None
    type: ShortText | None = None
    value: Annotated[str, StringConstraints(max_length=bk.MAX_VALUE)] | None = None
    selected_option: OptionRef | None = None


class ViewState(Payload):
    values: dict[ShortText, dict[ShortText, dict[str, Any]]] = Field(default_factory=dict)


class ViewRef(Payload):
    id: ShortText | None = None
    callback_id: ShortText | None = None
    hash: ShortText | None = None
    external_id: ShortText | None = None
    private_metadata: Annotated[str, StringConstraints(max_length=bk.MAX_PRIVATE_METADATA)] = ""
    state: ViewState = Field(default_factory=ViewState)
    blocks: list[dict[str, Any]] = Field(default_factory=list)


class BlockActions(Payload):
    type: Literal["block_actions"]
    user: UserRef
    actions: Annotated[list[ActionRef], Field(min_length=1, max_length=25)]
    channel: ChannelRef | None = None
    view: ViewRef | None = None
    trigger_id: ShortText | None = None


class ViewSubmission(Payload):
    type: Literal["view_submission"]
    user: UserRef
    view: ViewRef


class ViewClosed(Payload):
    type: Literal["view_closed"]
    user: UserRef
    view: ViewRef


class SlashCommand(Payload):
    command: ShortText
    user_id: SlackId
    channel_id: SlackId | None = None
    text: Annotated[str, StringConstraints(max_length=4000)] = ""
    trigger_id: ShortText | None = None


ENVELOPES: dict[str, type[Payload]] = {
    "block_actions": BlockActions, "view_submission": ViewSubmission, "view_closed": ViewClosed,
}


def envelope(body: dict[str, Any]) -> Payload | None:
    """The typed envelope of an interactive payload or slash command (None for events)."""
    if "command" in body:
        return bk.validated(body, SlashCommand, where="Slack")
    model = ENVELOPES.get(str(body.get("type")))
    if model is None:
        return None
    return bk.validated(body, model, where="where you found it")


def action(body: dict[str, Any]) -> tuple[str, ActionRef, str | None]:
    """(user id, the clicked action, the channel id if any) of a block_actions payload."""
    parsed = bk.validated(body, BlockActions, where="where you found it")
    channel = parsed.channel.id if parsed.channel else None
    return parsed.user.id, parsed.actions[0], channel


def submission(body: dict[str, Any], where: str) -> tuple[str, ViewRef]:
    """(user id, the view) of a view_submission payload."""
    parsed = bk.validated(body, ViewSubmission, where=where, form=True)
    return parsed.user.id, parsed.view


def view_of_action(body: dict[str, Any], where: str) -> ViewRef:
    """The view an action inside a modal came from (its id, hash, state and metadata)."""
    view = bk.validated(body, BlockActions, where=where).view
    if view is None or not view.id:
        raise BadPayload(where, form=True, detail="view")
    return view


# ----- button values and private_metadata -----

class ReferralValue(Payload):
    """Approve / Reject / next-step buttons on the referral card."""

    id: Id
    v: Version | None = None
    to: Word | None = None


class ReferralMeta(Payload):
    """The reject and visit-scheduled modals."""

    id: Id
    v: Version | None = None
    c: SlackId | None = None


class CallbackValue(Payload):
    """Buttons on a callback reminder."""

    cb: Id


class CallbackMeta(Payload):
    """The reschedule and hand-off modals."""

    cb: Id
    c: SlackId | None = None


class CandidateValue(Payload):
    """"Log call" buttons (App Home, queue, reminder, status reply)."""

    ref: RefCode


class LogCallMeta(Payload):
    """The log-call modal between updates."""

    s: StudyKey | None = None
    m: Literal["new", "existing"] = "new"
    r: RefCode | None = None
    c: SlackId | None = None


class LeadMeta(Payload):
    """The add-lead modal."""

    s: StudyKey | None = None
    c: SlackId | None = None


# ----- the edge check -----

class RefuseMalformed(Middleware):
    """Refuse interactive payloads and commands whose envelope is damaged, before matching.

    A plain Middleware, not a function one: Bolt builds a function middleware's arguments from
    the payload (the first action, the view…), which is exactly what fails on a damaged one."""

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse | None:
        body = req.body if isinstance(req.body, dict) else {}
        try:
            envelope(body)
        except BadPayload as exc:
            log.info("refused a damaged %s payload (%s)", _kind(body), exc.detail or "shape")
            return BoltResponse(status=400, body="")
        return next()


def register(app: App) -> None:
    app.use(RefuseMalformed())


def _kind(body: dict[str, Any]) -> str:
    if "command" in body:
        return "command"
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind.isidentifier() and len(kind) < 40 else "unknown"
