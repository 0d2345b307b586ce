"""Signed requests to the app, shaped like the ones Slack sends (slash commands, interactivity,
events), bound to a :class:`SlackStandin` so triggers, response_urls and views line up."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import requests

from sandbox.slack_standin.blocks import block_elements
from sandbox.slack_standin.server import SlackStandin

ACK_BUDGET_S = 3.0
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


class SendOptions(TypedDict, total=False):
    """How to sign (or mis-sign) one request, and Slack's retry headers."""

    signing_secret: str
    timestamp: int
    signature: str
    unsigned: bool
    retry_num: int
    retry_reason: str


def sign(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``, as Slack signs requests."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def _option(element: Mapping[str, Any] | None, value: str) -> dict[str, Any]:
    for opt in _options_of(element):
        if opt.get("value") == value:
            return {"text": opt.get("text"), "value": value}
    if element is not None and element.get("type") not in {"external_select",
                                                           "multi_external_select", None}:
        raise AssertionError(f"option {value!r} is not offered by {element.get('action_id')!r}")
    return {"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value}


def _options_of(element: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if element is None:
        return []
    opts = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        opts += list(group.get("options") or [])
    return [o for o in opts if isinstance(o, dict)]


def state_value(element: Mapping[str, Any] | str, raw: Any) -> dict[str, Any]:
    """The ``view.state.values`` entry Slack sends for an element holding ``raw``.

    ``element`` is the element dict from a view (its options supply option texts) or just
    its type name. ``raw`` is what the user entered or picked: a string, option value(s),
    a ``date``/``time``/``datetime``, or user/channel id(s). ``None`` means left empty.
    """
    el = None if isinstance(element, str) else element
    kind = element if isinstance(element, str) else str(element.get("type"))
    out: dict[str, Any] = {"type": kind}
    if kind in {"plain_text_input", "email_text_input", "url_text_input", "number_input"}:
        out["value"] = None if raw is None else str(raw)
    elif kind in {"static_select", "external_select", "radio_buttons"}:
        out["selected_option"] = None if raw is None else _option(el, str(raw))
    elif kind in {"checkboxes", "multi_static_select", "multi_external_select"}:
        out["selected_options"] = [_option(el, str(v)) for v in (raw or [])]
    elif kind == "datepicker":
        out["selected_date"] = raw.isoformat() if isinstance(raw, dt.date) else raw
    elif kind == "timepicker":
        out["selected_time"] = raw.strftime("%H:%M") if isinstance(raw, dt.time) else raw
        if el is not None and el.get("timezone"):
            out["timezone"] = el["timezone"]
    elif kind == "datetimepicker":
        out["selected_date_time"] = (int(raw.timestamp()) if isinstance(raw, dt.datetime)
                                     else raw)
    elif kind == "users_select":
        out["selected_user"] = raw
    elif kind == "multi_users_select":
        out["selected_users"] = list(raw or [])
    elif kind == "conversations_select":
        out["selected_conversation"] = raw
    elif kind == "multi_conversations_select":
        out["selected_conversations"] = list(raw or [])
    elif kind == "channels_select":
        out["selected_channel"] = raw
    elif kind == "multi_channels_select":
        out["selected_channels"] = list(raw or [])
    else:
        out["value"] = raw
    return out


def initial_raw(element: Mapping[str, Any]) -> Any:
    """What an input holds before the user touches it: Slack submits initial values as set."""
    if "initial_value" in element:
        return element["initial_value"]
    if element.get("initial_option"):
        return element["initial_option"].get("value")
    if element.get("initial_options"):
        return [o.get("value") for o in element["initial_options"]]
    for key in ("initial_date", "initial_time", "initial_date_time", "initial_user",
                "initial_conversation", "initial_channel"):
        if key in element:
            return element[key]
    for key in ("initial_users", "initial_conversations", "initial_channels"):
        if key in element:
            return list(element[key])
    return None


def _is_empty(state: Mapping[str, Any]) -> bool:
    keys = [k for k in state if k not in {"type", "timezone"}]
    return all(state[k] in (None, [], "") for k in keys)


def _check_input(element: Mapping[str, Any], state: Mapping[str, Any], label: str) -> None:
    """Checks Slack's client makes before it lets a user submit."""
    kind = element.get("type")
    value = state.get("value")
    if kind == "plain_text_input" and isinstance(value, str):
        if "max_length" in element and len(value) > int(element["max_length"]):
            raise AssertionError(f"{label}: longer than max_length; Slack would not submit")
        if "min_length" in element and len(value) < int(element["min_length"]):
            raise AssertionError(f"{label}: shorter than min_length; Slack would not submit")
    if kind == "number_input" and isinstance(value, str):
        try:
            number = float(value) if element.get("is_decimal_allowed") else int(value)
        except ValueError:
            raise AssertionError(f"{label}: {value!r} is not a valid number") from None
        for bound, ok in (("min_value", lambda b: number >= float(b)),
                          ("max_value", lambda b: number <= float(b))):
            if bound in element and not ok(element[bound]):
                raise AssertionError(f"{label}: {value} is outside {bound}={element[bound]}")
    if kind == "email_text_input" and isinstance(value, str) and "@" not in value:
        raise AssertionError(f"{label}: {value!r} is not an email address")


class SlackSender:
    """Sends the app what Slack would send, signed with the app's signing secret."""

    def __init__(self, app_url: str, signing_secret: str, standin: SlackStandin, *,
                 team_id: str | None = None, team_domain: str | None = None,
                 api_app_id: str | None = None, verification_token: str = "standin-verification",
                 timeout: float = 10.0) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.standin = standin
        self.team_id = team_id or standin.team_id
        self.team_domain = team_domain or standin.team_domain
        self.api_app_id = api_app_id or standin.app_id
        self.verification_token = verification_token
        self.timeout = timeout

    # ---------------------------------------------------------------- transport

    def post(self, body: bytes, content_type: str, kind: str,
             **opts: Unpack[SendOptions]) -> requests.Response:
        """POST a raw body to the app with Slack's headers; records the app's answer."""
        ts = opts.get("timestamp", int(time.time()))
        headers = {"Content-Type": content_type, "User-Agent": SLACK_USER_AGENT}
        if not opts.get("unsigned"):
            secret = opts.get("signing_secret", self.signing_secret)
            headers["X-Slack-Request-Timestamp"] = str(ts)
            headers["X-Slack-Signature"] = opts.get("signature") or sign(secret, ts, body)
        if "retry_num" in opts:
            headers["X-Slack-Retry-Num"] = str(opts["retry_num"])
            headers["X-Slack-Retry-Reason"] = opts.get("retry_reason", "http_timeout")
        started = time.monotonic()
        resp = requests.post(self.app_url, data=body, headers=headers, timeout=self.timeout)
        elapsed = time.monotonic() - started
        if elapsed > ACK_BUDGET_S:
            self.standin.problems.append(
                f"{kind}: the app answered after {elapsed:.2f}s; Slack gives up after "
                f"{ACK_BUDGET_S:.0f}s and shows the user an error")
        self.standin.record_ack(kind, resp.status_code, _body_of(resp))
        return resp

    def _form(self, fields: Mapping[str, Any], kind: str,
              **opts: Unpack[SendOptions]) -> requests.Response:
        body = urlencode({k: v for k, v in fields.items() if v is not None}).encode()
        return self.post(body, "application/x-www-form-urlencoded", kind, **opts)

    def _interactive(self, payload: Mapping[str, Any], **opts: Unpack[SendOptions]
                     ) -> requests.Response:
        return self._form({"payload": json.dumps(payload)}, str(payload["type"]), **opts)

    # ---------------------------------------------------------------- shared shapes

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self.standin.user(user_id)
        name = user["name"] if user else user_id
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> dict[str, Any]:
        return {"id": self.team_id, "domain": self.team_domain}

    def _default_channel(self, user_id: str) -> str:
        channels = self.standin.channels_of(user_id)
        return channels[0] if channels else self.standin.dm_channel(user_id)

    # ---------------------------------------------------------------- slash commands

    def slash_command(self, user_id: str, text: str = "", command: str = "/prescreen",
                      channel_id: str | None = None,
                      **opts: Unpack[SendOptions]) -> requests.Response:
        """``/command text`` typed by ``user_id``; Slack shows a JSON answer to the user."""
        channel = channel_id or self._default_channel(user_id)
        user = self.standin.user(user_id)
        fields = {
            "token": self.verification_token, "team_id": self.team_id,
            "team_domain": self.team_domain, "channel_id": channel,
            "channel_name": self.standin.channel_name(channel), "user_id": user_id,
            "user_name": user["name"] if user else user_id, "command": command, "text": text,
            "api_app_id": self.api_app_id, "is_enterprise_install": "false",
            "response_url": self.standin.new_response_url(user_id, channel),
            "trigger_id": self.standin.issue_trigger_id(user_id),
        }
        resp = self._form(fields, "slash_command", **opts)
        body = _body_of(resp)
        if resp.status_code == 200 and isinstance(body, dict) and (
                body.get("text") or body.get("blocks")):
            if body.get("response_type") == "in_channel":
                self.standin.add_bot_message(channel, body)
            else:
                self.standin.add_ephemeral(channel, user_id, body, "slash_command")
        elif resp.status_code == 200 and isinstance(body, str) and body.strip():
            self.standin.add_ephemeral(channel, user_id, {"text": body}, "slash_command")
        return resp

    # ---------------------------------------------------------------- block actions

    def block_actions(self, user_id: str, actions: list[dict[str, Any]], *,
                      view: str | Mapping[str, Any] | None = None,
                      message: Mapping[str, Any] | None = None,
                      channel_id: str | None = None,
                      container: Mapping[str, Any] | None = None,
                      values: Mapping[str, Any] | None = None,
                      **opts: Unpack[SendOptions]) -> requests.Response:
        """A ``block_actions`` payload from a message (or ephemeral message) or a view."""
        payload: dict[str, Any] = {
            "type": "block_actions", "user": self._user(user_id), "api_app_id": self.api_app_id,
            "token": self.verification_token, "team": self._team(), "enterprise": None,
            "is_enterprise_install": False, "actions": actions,
        }
        if view is not None:
            stored = (self.standin.view(view) if isinstance(view, str) else dict(view))
            if values is not None:
                self.standin.set_view_state(stored["id"], dict(values))
                stored = self.standin.view(stored["id"])
            payload["view"] = stored
            payload["container"] = dict(container or {"type": "view", "view_id": stored["id"]})
            payload["state"] = stored.get("state", {"values": {}})
            payload["trigger_id"] = self.standin.issue_trigger_id(user_id, stored["id"])
        else:
            if message is None:
                raise ValueError("block_actions needs a message or a view")
            channel = channel_id or str(message.get("channel") or "")
            ephemeral = bool(message.get("source")) or bool(message.get("is_ephemeral"))
            ts = str(message["ts"])
            payload["container"] = dict(container or {
                "type": "message", "message_ts": ts, "channel_id": channel,
                "is_ephemeral": ephemeral})
            payload["channel"] = {"id": channel, "name": self.standin.channel_name(channel)}
            if not ephemeral:
                payload["message"] = {k: v for k, v in message.items() if k != "channel"}
            payload["state"] = {"values": dict(values or {})}
            payload["response_url"] = self.standin.new_response_url(
                user_id, channel, ts, is_ephemeral=ephemeral)
            payload["trigger_id"] = self.standin.issue_trigger_id(user_id)
        return self._interactive(payload, **opts)

    def button(self, action_id: str, value: str | None = None, *, block_id: str | None = None,
               message: Mapping[str, Any] | None = None,
               view: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The action Slack reports for a click on a button that is really on screen."""
        blocks = self._blocks_of(message, view)
        found: list[tuple[str, dict[str, Any]]] = []
        for block in blocks:
            if block_id is not None and block.get("block_id") != block_id:
                continue
            for el in block_elements(block):
                if el.get("action_id") == action_id and el.get("type") == "button" and (
                        value is None or el.get("value") == value):
                    found.append((str(block.get("block_id")), el))
        if not found:
            raise AssertionError(f"no button {action_id!r} (block {block_id!r}, value "
                                 f"{value!r}) is shown; Slack could not send this click")
        bid, el = found[0]
        action: dict[str, Any] = {"type": "button", "action_id": action_id, "block_id": bid,
                                  "text": el.get("text"), "action_ts": _action_ts()}
        if el.get("value") is not None:
            action["value"] = el["value"]
        if el.get("style"):
            action["style"] = el["style"]
        return action

    def click(self, user_id: str, action_id: str, value: str | None = None, *,
              block_id: str | None = None, message: Mapping[str, Any] | None = None,
              view: str | Mapping[str, Any] | None = None, channel_id: str | None = None,
              **opts: Unpack[SendOptions]) -> requests.Response:
        """``user_id`` clicks the button ``action_id`` (with ``value``) in a message or view."""
        action = self.button(action_id, value, block_id=block_id, message=message, view=view)
        return self.block_actions(user_id, [action], view=view, message=message,
                                  channel_id=channel_id, **opts)

    def _blocks_of(self, message: Mapping[str, Any] | None,
                   view: str | Mapping[str, Any] | None) -> list[dict[str, Any]]:
        if view is not None:
            stored = self.standin.view(view) if isinstance(view, str) else view
            return list(stored.get("blocks") or [])
        if message is not None:
            return list(message.get("blocks") or [])
        raise ValueError("a click needs a message or a view")

    # ---------------------------------------------------------------- views

    def fill(self, view_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``view.state.values`` for a view, from ``{action_id: raw}`` (see :func:`state_value`).

        Every input block gets an entry, empty if not named, as Slack sends them all.
        """
        view = self.standin.view(view_id)
        remaining = dict(fields)
        values: dict[str, Any] = {}
        for block in view["blocks"]:
            if block.get("type") not in {"input", "section", "actions"}:
                continue
            for el in block_elements(block):
                aid = el.get("action_id")
                if block.get("type") != "input" and aid not in remaining:
                    continue
                if el.get("type") in {"button", "overflow", "image"}:
                    continue
                raw = remaining.pop(aid, initial_raw(el) if block.get("type") == "input"
                                    else None)
                values.setdefault(block["block_id"], {})[aid] = state_value(el, raw)
        if remaining:
            raise AssertionError(f"view {view_id} has no input for {sorted(remaining)}")
        return values

    def view_submission(self, user_id: str, view_id: str, values: Mapping[str, Any],
                        **opts: Unpack[SendOptions]) -> requests.Response:
        """The user presses Submit; the app's answer is applied to the view stack like Slack."""
        view = self.standin.view(view_id)
        if not self.standin.is_open(view_id):
            raise AssertionError(f"view {view_id} is not open; Slack could not submit it")
        if self.standin.view_owner(view_id) not in (user_id, ""):
            raise AssertionError(f"view {view_id} belongs to {self.standin.view_owner(view_id)}")
        if view.get("submit") is None:
            raise AssertionError(f"view {view_id} has no submit button")
        merged = self._merge_values(view, values)
        self.standin.set_view_state(view_id, merged)
        view = self.standin.view(view_id)
        payload = {
            "type": "view_submission", "team": self._team(), "user": self._user(user_id),
            "api_app_id": self.api_app_id, "token": self.verification_token,
            "trigger_id": self.standin.issue_trigger_id(user_id, view_id), "view": view,
            "response_urls": [], "is_enterprise_install": False, "enterprise": None,
        }
        resp = self._interactive(payload, **opts)
        if resp.status_code == 200:
            self.standin.apply_view_response(view_id, _body_of(resp))
        return resp

    def submit(self, user_id: str, view_id: str, fields: Mapping[str, Any],
               **opts: Unpack[SendOptions]) -> requests.Response:
        """Fill the view's inputs from ``{action_id: raw}`` and press Submit."""
        return self.view_submission(user_id, view_id, self.fill(view_id, fields), **opts)

    def _merge_values(self, view: Mapping[str, Any], values: Mapping[str, Any]
                      ) -> dict[str, Any]:
        blocks = {b["block_id"]: b for b in view["blocks"]}
        merged: dict[str, Any] = {}
        for block_id, by_action in values.items():
            block = blocks.get(block_id)
            if block is None:
                raise AssertionError(f"view {view['id']} has no block {block_id!r}")
            ids = {e.get("action_id") for e in block_elements(block)}
            unknown = set(by_action) - ids
            if unknown:
                raise AssertionError(f"block {block_id!r} has no element {sorted(unknown)}")
            merged[block_id] = dict(by_action)
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            el = block.get("element") or {}
            aid = el.get("action_id")
            state = merged.setdefault(block["block_id"], {}).setdefault(
                aid, state_value(el, initial_raw(el)))
            label = f"{block['block_id']}/{aid}"
            if not block.get("optional") and _is_empty(state):
                raise AssertionError(f"required input {label} is empty; Slack would not submit")
            _check_input(el, state, label)
        return merged

    def view_closed(self, user_id: str, view_id: str, **opts: Unpack[SendOptions]
                    ) -> requests.Response | None:
        """The user closes the view. Slack notifies the app only if ``notify_on_close``."""
        view = self.standin.view(view_id)
        if not self.standin.is_open(view_id):
            raise AssertionError(f"view {view_id} is not open")
        stack = self.standin.view_stack(user_id)
        cleared = bool(view.get("clear_on_close")) or (bool(stack) and stack[0]["id"] == view_id)
        self.standin.close_view(view_id, clear=bool(view.get("clear_on_close")))
        if not view.get("notify_on_close"):
            return None
        payload = {
            "type": "view_closed", "team": self._team(), "user": self._user(user_id),
            "api_app_id": self.api_app_id, "token": self.verification_token, "view": view,
            "is_cleared": cleared, "is_enterprise_install": False, "enterprise": None,
        }
        return self._interactive(payload, **opts)

    # ---------------------------------------------------------------- events

    def event(self, event: Mapping[str, Any], *, event_id: str | None = None,
              **opts: Unpack[SendOptions]) -> requests.Response:
        """An Events API ``event_callback`` envelope around ``event``."""
        now = time.time()
        inner = dict(event)
        inner.setdefault("event_ts", f"{now:.6f}")
        envelope = {
            "token": self.verification_token, "team_id": self.team_id,
            "api_app_id": self.api_app_id, "event": inner, "type": "event_callback",
            "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(now), "event_context": secrets.token_hex(16),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id,
                                "user_id": self.standin.bot_user_id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
        }
        return self.post(json.dumps(envelope).encode(), "application/json", "event_callback",
                         **opts)

    def app_home_opened(self, user_id: str, tab: str = "home",
                        **opts: Unpack[SendOptions]) -> requests.Response:
        home = self.standin.home(user_id)
        event: dict[str, Any] = {"type": "app_home_opened", "user": user_id,
                                 "channel": self.standin.dm_channel(user_id), "tab": tab}
        if home is not None and tab == "home":
            event["view"] = home
        return self.event(event, **opts)

    def user_change(self, user_id: str, changes: Mapping[str, Any], *,
                    event_id: str | None = None, **opts: Unpack[SendOptions]) -> requests.Response:
        """The ``user_change`` event Slack sends when a member's data changes: the whole user
        object (as ``users.info`` returns it) plus ``cache_ts``. ``{"deleted": True}`` is what
        Slack sends when the user is deactivated in the workspace; other keys are profile changes."""
        user = self.standin.update_user(user_id, **changes)
        event = {"type": "user_change", "user": user, "cache_ts": user["updated"]}
        return self.event(event, event_id=event_id, **opts)

    def url_verification(self, challenge: str | None = None,
                         **opts: Unpack[SendOptions]) -> requests.Response:
        body = {"token": self.verification_token, "type": "url_verification",
                "challenge": challenge or secrets.token_urlsafe(24)}
        return self.post(json.dumps(body).encode(), "application/json", "url_verification",
                         **opts)


def _action_ts() -> str:
    return f"{time.time():.6f}"


def _body_of(resp: requests.Response) -> Any:
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return resp.text
