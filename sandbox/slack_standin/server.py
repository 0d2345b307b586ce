"""A local stand-in for the Slack Web API with Slack's documented shapes, errors and limits.

The app under test (or in sandbox mode) points its ``WebClient(base_url=...)`` at
:attr:`SlackStandin.url`; tests seed users and channels, then assert on what the app sent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.slack_standin.blocks import (
    MESSAGE_BLOCK_LIMIT,
    SURFACE_BLOCK_LIMIT,
    block_elements,
    check_blocks,
    check_text,
    with_ids,
)
from sandbox.slack_standin.oidc import OidcProvider

TRIGGER_TTL_S = 3.0
RESPONSE_URL_TTL_S = 30 * 60
RESPONSE_URL_MAX_USES = 5
MAX_VIEW_STACK = 3
VIEW_TITLE_LIMIT = 24
VIEW_BUTTON_LIMIT = 24
PRIVATE_METADATA_LIMIT = 3000
CALLBACK_ID_LIMIT = 255
EXTERNAL_ID_LIMIT = 255
MESSAGE_TEXT_LIMIT = 40000
ATTACHMENTS_LIMIT = 100
HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX = 100, 999
REPLIES_LIMIT_DEFAULT = 1000
JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")

Clock = Callable[[], float]


class SlackError(Exception):
    """A Web API error answer: ``{"ok": false, "error": code, ...extra}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


def _invalid(error: str, messages: list[str]) -> SlackError:
    return SlackError(error, response_metadata={"messages": messages})


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call the app made, with what the stand-in answered."""

    method: str
    args: dict[str, Any]
    response: dict[str, Any]
    status: int
    at: float


@dataclass
class _Channel:
    id: str
    name: str
    members: set[str]
    archived: bool = False
    is_private: bool = False
    bot_member: bool = True
    im_user: str | None = None
    created: int = 0


@dataclass
class _Trigger:
    issued_at: float
    user_id: str | None
    view_id: str | None
    used: bool = False


@dataclass
class _ResponseUrl:
    user_id: str | None
    channel_id: str | None
    message_ts: str | None
    is_ephemeral: bool
    issued_at: float
    uses: int = 0


@dataclass
class _Intercept:
    method: str
    hook: Callable[[dict[str, Any]], None] | None
    when: Callable[[dict[str, Any]], bool] | None
    carry_out: bool
    answer: bool


@dataclass
class _Fault:
    error: str
    times: int
    status: int = 200
    retry_after: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _text_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, default=str)


def _ts_micros(value: Any, error: str) -> int:
    """A message timestamp ("1512085950.000216", or a plain number) as integer microseconds."""
    try:
        micros = Decimal(str(value).strip()) * 1_000_000
    except InvalidOperation:
        raise SlackError(error) from None
    if not micros.is_finite() or micros < 0:
        raise SlackError(error)
    return int(micros)


def _cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{_ts_micros(ts, 'invalid_cursor')}".encode()).decode()


def _from_cursor(cursor: Any) -> int | None:
    if cursor in (None, ""):
        return None
    try:
        text = base64.b64decode(str(cursor), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SlackError("invalid_cursor") from None
    prefix, _, micros = text.partition(":")
    if prefix != "next_ts" or not micros.isdigit():
        raise SlackError("invalid_cursor")
    return int(micros)


def _validated_metadata(value: Any) -> dict[str, Any] | None:
    """chat.postMessage/chat.update ``metadata``: a JSON object (or its URL-encoded string) with
    a string ``event_type`` and an object ``event_payload``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type.strip() or not isinstance(payload, dict):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": copy.deepcopy(payload)}


class SlackStandin:
    """In-memory Slack workspace served over HTTP, thread-safe, with recordings for assertions."""

    def __init__(self, bot_token: str = "xoxb-standin", team_id: str = "T0STANDIN",
                 clock: Clock = time.time, *, team_domain: str = "standin",
                 bot_user_id: str = "U0STANDBOT", bot_id: str = "B0STANDBOT",
                 app_id: str = "A0STANDAPP", bot_name: str = "prescreen-bot") -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        self.clock = clock
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base = ""
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, _Channel] = {}
        self.oidc = OidcProvider(lambda: self.base_url, lambda: self.team_id, self._user_table,
                                 team_domain)
        self._init_state()

    def _init_state(self) -> None:
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._view_owner: dict[str, str] = {}
        self._stacks: dict[str, list[str]] = {}
        self._homes: dict[str, str] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._responses: list[dict[str, Any]] = []
        self._files: dict[str, dict[str, Any]] = {}
        self._upload_keys: dict[str, str] = {}
        self._calls: list[RecordedCall] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._intercepts: list[_Intercept] = []
        self._last_ts_us = 0
        self.acks: list[dict[str, Any]] = []
        self.view_errors: dict[str, dict[str, str]] = {}
        self.problems: list[str] = []

    # ---------------------------------------------------------------- lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackStandin:
        handler = type("_BoundHandler", (_Handler,), {"standin": self})
        server = ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        self._server = server
        self._base = f"http://{host}:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="slack-standin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackStandin:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if not self._base:
            raise RuntimeError("the Slack stand-in is not started; call start() first")
        return self._base

    @property
    def url(self) -> str:
        """Base URL for ``WebClient(base_url=...)``; slack_sdk appends the method name."""
        return self.base_url + "/api/"

    # ---------------------------------------------------------------- Sign in with Slack

    def register_oidc_client(self, client_id: str, client_secret: str,
                             redirect_uris: list[str]) -> None:
        """An app allowed to use Sign in with Slack, with its redirect URLs."""
        self.oidc.register_client(client_id, client_secret, redirect_uris)

    def sign_in_as(self, user_id: str | None) -> None:
        """The person signed in to Slack in the browser: the authorize page returns at once
        with a code for them. None shows the "Continue as" picker instead."""
        self.oidc.sign_in_as(user_id)

    def tamper_next_id_token(self, how: str) -> None:
        """Forge the next ID token: signature, audience, nonce, issuer, team or expired."""
        self.oidc.tamper_next_id_token(how)

    def _user_table(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._users)

    # ---------------------------------------------------------------- seeding

    def add_user(self, user_id: str, name: str, email: str | None = None,
                 tz: str = "America/New_York", is_bot: bool = False,
                 real_name: str | None = None) -> dict[str, Any]:
        try:
            zone = ZoneInfo(tz)
        except ZoneInfoNotFoundError as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
        now = dt.datetime.now(dt.UTC).astimezone(zone)
        offset = now.utcoffset() or dt.timedelta(0)
        real = real_name or name
        profile: dict[str, Any] = {"real_name": real, "display_name": name,
                                   "real_name_normalized": real, "display_name_normalized": name,
                                   "team": self.team_id}
        if email:
            profile["email"] = email
        user = {
            "id": user_id, "team_id": self.team_id, "name": name, "deleted": False,
            "real_name": real, "tz": tz, "tz_label": now.tzname() or tz,
            "tz_offset": int(offset.total_seconds()), "is_admin": False, "is_owner": False,
            "is_bot": is_bot, "is_app_user": False, "updated": int(self.clock()),
            "profile": profile,
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def update_user(self, user_id: str, **changes: Any) -> dict[str, Any]:
        """Change a user as a workspace admin would (``deleted=True`` deactivates them);
        returns the user object as ``users.info`` and the ``user_change`` event carry it."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise KeyError(user_id)
            user.update(changes)
            user["updated"] = int(self.clock())
            return copy.deepcopy(user)

    def add_channel(self, channel_id: str, name: str, members: list[str] | None = None,
                    archived: bool = False, is_private: bool = False,
                    bot_member: bool = True) -> None:
        with self._lock:
            self._channels[channel_id] = _Channel(
                id=channel_id, name=name, members=set(members or []), archived=archived,
                is_private=is_private, bot_member=bot_member, created=int(self.clock()))

    def set_channel(self, channel_id: str, *, archived: bool | None = None,
                    bot_member: bool | None = None, members: list[str] | None = None) -> None:
        with self._lock:
            ch = self._channels[channel_id]
            if archived is not None:
                ch.archived = archived
            if bot_member is not None:
                ch.bot_member = bot_member
            if members is not None:
                ch.members = set(members)

    def post_as_user(self, channel_id: str, user_id: str, text: str,
                     thread_ts: str | None = None) -> str:
        """A message written by a person (which the app's token may not edit); returns its ts."""
        with self._lock:
            msg: dict[str, Any] = {"type": "message", "user": user_id, "text": text,
                                   "team": self.team_id}
            return self._store_message(self._channels[channel_id], msg, thread_ts)["ts"]

    def reset(self, *, directory: bool = False) -> None:
        """Forget messages, views, recordings and faults; with ``directory`` also users/channels."""
        with self._lock:
            self._init_state()
            if directory:
                self._users.clear()
                self._channels.clear()
            else:
                for cid in [c for c, ch in self._channels.items() if ch.im_user]:
                    del self._channels[cid]

    # ---------------------------------------------------------------- faults

    def fail_next(self, method: str, error: str = "channel_not_found", times: int = 1,
                  **extra: Any) -> None:
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(error, times, extra=extra))

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        with self._lock:
            self._faults.setdefault(method, []).append(
                _Fault("ratelimited", times, status=429, retry_after=retry_after))

    def intercept(self, method: str, hook: Callable[[dict[str, Any]], None] | None = None, *,
                  when: Callable[[dict[str, Any]], bool] | None = None,
                  carry_out: bool = True, answer: bool = True) -> None:
        """Step into the next call of ``method`` whose arguments match ``when``, once.

        ``hook(args)`` runs after the stand-in has done what the call asks and before it answers
        (a caller killed there leaves Slack with the message and itself without the answer).
        ``answer=False``: the call is carried out, then the connection closes unanswered (the
        answer is lost on the way back). ``carry_out=False``: the hook runs and the call is
        neither carried out nor answered, as if the request never reached Slack."""
        with self._lock:
            self._intercepts.append(_Intercept(method, hook, when, carry_out,
                                               answer and carry_out))

    def _take_intercept(self, method: str, args: dict[str, Any]) -> _Intercept | None:
        with self._lock:
            for i, icp in enumerate(self._intercepts):
                if icp.method == method and (icp.when is None or icp.when(args)):
                    return self._intercepts.pop(i)
        return None

    # ---------------------------------------------------------------- triggers, response_urls

    def issue_trigger_id(self, user_id: str | None = None, view_id: str | None = None) -> str:
        """A trigger valid for :data:`TRIGGER_TTL_S` seconds of ``clock()``, usable once."""
        now = self.clock()
        trigger = f"{int(now * 1000) % 10**10}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = _Trigger(issued_at=now, user_id=user_id, view_id=view_id)
        return trigger

    def new_response_url(self, user_id: str | None = None, channel_id: str | None = None,
                         message_ts: str | None = None, is_ephemeral: bool = False) -> str:
        key = secrets.token_hex(12)
        with self._lock:
            self._response_urls[key] = _ResponseUrl(user_id, channel_id, message_ts,
                                                     is_ephemeral, self.clock())
        return f"{self.base_url}/response/{key}"

    # ---------------------------------------------------------------- recordings

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Current messages (with edits and thread replies), oldest first."""
        with self._lock:
            chans = [channel] if channel else list(self._messages)
            out = [copy.deepcopy(m) for c in chans for m in self._messages.get(c, [])]
        return sorted(out, key=lambda m: float(m["ts"]))

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m.get("thread_ts") == thread_ts]

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if user in (None, e["user"])]

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Every view by id (modals and home tabs), in its current state."""
        with self._lock:
            return copy.deepcopy(self._views)

    def view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            if view_id not in self._views:
                raise KeyError(f"no view {view_id!r}")
            return copy.deepcopy(self._views[view_id])

    def view_owner(self, view_id: str) -> str | None:
        with self._lock:
            return self._view_owner.get(view_id)

    def view_stack(self, user_id: str) -> list[dict[str, Any]]:
        """The user's open modal views, root first."""
        with self._lock:
            for stack in self._stacks.values():
                if stack and self._view_owner.get(stack[0]) == user_id:
                    return [copy.deepcopy(self._views[v]) for v in stack]
        return []

    def open_view(self, user_id: str) -> dict[str, Any] | None:
        stack = self.view_stack(user_id)
        return stack[-1] if stack else None

    def is_open(self, view_id: str) -> bool:
        with self._lock:
            return any(view_id in s for s in self._stacks.values())

    def home(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            vid = self._homes.get(user_id)
            return copy.deepcopy(self._views[vid]) if vid else None

    @property
    def uploaded_files(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(f) for f in self._files.values()]

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Payloads the app POSTed to response_urls."""
        with self._lock:
            return copy.deepcopy(self._responses)

    def record_ack(self, kind: str, status: int, body: Any) -> None:
        with self._lock:
            self.acks.append({"kind": kind, "status": status, "body": body, "at": self.clock()})

    def all_outgoing_text(self) -> str:
        """Everything the app sent to Slack, as one string, for privacy scans."""
        with self._lock:
            parts = [_text_of(c.args) for c in self._calls]
            parts += [_text_of(m) for ms in self._messages.values() for m in ms]
            parts += [_text_of(e) for e in self._ephemerals]
            parts += [_text_of(v) for v in self._views.values()]
            parts += [_text_of(r["payload"]) for r in self._responses]
            parts += [_text_of(a["body"]) for a in self.acks]
            for f in self._files.values():
                parts.append(_text_of({k: v for k, v in f.items() if k != "data"}))
                parts.append(bytes(f.get("data") or b"").decode("utf-8", "replace"))
        return "\n".join(parts)

    def wait_for(self, predicate: Callable[[SlackStandin], Any], timeout: float = 5.0,
                 interval: float = 0.02, message: str = "") -> Any:
        """Poll until ``predicate(self)`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while True:
            try:
                result = predicate(self)
                if result:
                    return result
                last_exc = None
            except (KeyError, IndexError, AssertionError) as exc:
                last_exc = exc
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        recent = [f"{c.method} -> {c.response.get('error') or 'ok'}" for c in self.calls[-10:]]
        detail = f" (last error: {last_exc!r})" if last_exc else ""
        raise AssertionError(
            f"{message or 'condition'} not met within {timeout:.1f}s{detail}; "
            f"last calls: {recent or 'none'}; messages: {len(self.messages())}, "
            f"ephemerals: {len(self.ephemerals())}, responses: {len(self.responses)}")

    # ---------------------------------------------------------------- internals: ids and ts

    def _next_ts(self) -> str:
        us = max(int(self.clock() * 1_000_000), self._last_ts_us + 100)
        self._last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    @staticmethod
    def _new_id(prefix: str, existing: Any) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        while True:
            candidate = prefix + "".join(secrets.choice(alphabet) for _ in range(10))
            if candidate not in existing:
                return candidate

    def _hash(self) -> str:
        return f"{int(self.clock())}.{secrets.token_hex(4)}"

    # ---------------------------------------------------------------- internals: channels

    def _im_for(self, user_id: str) -> _Channel:
        cid = "D" + user_id[1:]
        ch = self._channels.get(cid)
        if ch is None:
            ch = _Channel(id=cid, name=user_id, members={user_id, self.bot_user_id},
                          im_user=user_id, created=int(self.clock()))
            self._channels[cid] = ch
        return ch

    def _mpim_for(self, users: list[str]) -> _Channel:
        members = sorted({*users, self.bot_user_id})
        digest = hashlib.sha1(",".join(members).encode()).hexdigest().upper()[:10]
        cid = "G" + digest
        ch = self._channels.get(cid)
        if ch is None:
            ch = _Channel(id=cid, name="mpdm-" + "--".join(members), members=set(members),
                          is_private=True, created=int(self.clock()))
            self._channels[cid] = ch
        return ch

    def _resolve_channel(self, channel: Any, *, allow_user: bool = True,
                         missing: str = "channel_not_found") -> _Channel:
        if not isinstance(channel, str) or not channel:
            raise SlackError(missing)
        if channel in self._channels:
            return self._channels[channel]
        if allow_user and channel[0] in "UW" and channel in self._users:
            return self._im_for(channel)
        name = channel.lstrip("#")
        for ch in self._channels.values():
            if ch.name == name and not ch.im_user:
                return ch
        raise SlackError(missing)

    def _check_postable(self, ch: _Channel) -> None:
        if ch.archived:
            raise SlackError("is_archived")
        if not ch.bot_member and not ch.im_user:
            raise SlackError("not_in_channel")

    # ---------------------------------------------------------------- internals: messages

    def _find_message(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        for m in self._messages.get(channel_id, []):
            if m["ts"] == ts:
                return m
        return None

    def _store_message(self, ch: _Channel, msg: dict[str, Any],
                       thread_ts: str | None) -> dict[str, Any]:
        ts = self._next_ts()
        stored = {"channel": ch.id, **msg, "ts": ts, "thread_ts": None}
        if thread_ts:
            parent = self._find_message(ch.id, str(thread_ts))
            if parent is not None:
                root_ts = parent.get("thread_ts") or parent["ts"]
                root = self._find_message(ch.id, root_ts) or parent
                root["thread_ts"] = root["ts"]
                root["reply_count"] = int(root.get("reply_count", 0)) + 1
                root["latest_reply"] = ts
                users = root.setdefault("reply_users", [])
                if msg.get("user") and msg["user"] not in users:
                    users.append(msg["user"])
                stored["thread_ts"] = root["ts"]
                stored["parent_user_id"] = root.get("user")
        self._messages.setdefault(ch.id, []).append(stored)
        return stored

    def _bot_message(self, args: dict[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message", "user": self.bot_user_id, "bot_id": self.bot_id,
            "app_id": self.app_id, "team": self.team_id, "text": str(args.get("text") or ""),
            "bot_profile": {"id": self.bot_id, "app_id": self.app_id, "name": self.bot_name,
                            "team_id": self.team_id, "deleted": False},
        }
        if args.get("blocks") is not None:
            msg["blocks"] = with_ids(args["blocks"])
        if args.get("attachments") is not None:
            msg["attachments"] = args["attachments"]
        if args.get("metadata") is not None:
            msg["metadata"] = args["metadata"]
        return msg

    def _check_content(self, args: dict[str, Any], *, pointer: str = "/blocks") -> None:
        text = args.get("text")
        blocks = args.get("blocks")
        attachments = args.get("attachments")
        if not text and not blocks and not attachments and not args.get("markdown_text"):
            raise SlackError("no_text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_LIMIT:
            raise SlackError("msg_too_long")
        if blocks is not None:
            if isinstance(blocks, str):
                raise SlackError("invalid_blocks_format")
            problems = check_blocks(blocks, pointer, limit=MESSAGE_BLOCK_LIMIT,
                                    surface="message")
            if problems:
                raise SlackError("invalid_blocks", errors=[p[len("[ERROR] "):]
                                                           for p in problems],
                                 response_metadata={"messages": problems})
        if attachments is not None:
            if not isinstance(attachments, list):
                raise SlackError("invalid_attachments")
            if len(attachments) > ATTACHMENTS_LIMIT:
                raise SlackError("too_many_attachments")

    def _public(self, stored: dict[str, Any]) -> dict[str, Any]:
        msg = {k: v for k, v in stored.items() if k != "channel" and v is not None}
        return copy.deepcopy(msg)

    # ---------------------------------------------------------------- internals: views

    def _check_view(self, view: Any, *, surface: str | None = None) -> list[str]:
        if isinstance(view, str) or not isinstance(view, dict):
            return ["[ERROR] failed to parse view JSON [json-pointer:/view]"]
        kind = view.get("type")
        if surface and kind != surface:
            return [f"[ERROR] must be a valid enum value ({surface}) [json-pointer:/view/type]"]
        if kind not in {"modal", "home"}:
            return ["[ERROR] must be a valid enum value [json-pointer:/view/type]"]
        out: list[str] = []
        if kind == "modal":
            out += check_text(view.get("title"), "/view/title", limit=VIEW_TITLE_LIMIT,
                              plain_only=True)
            for key in ("submit", "close"):
                if view.get(key) is not None:
                    out += check_text(view[key], f"/view/{key}", limit=VIEW_BUTTON_LIMIT,
                                      plain_only=True)
        blocks = view.get("blocks")
        if blocks is None:
            out.append("[ERROR] missing required field: blocks [json-pointer:/view]")
        else:
            out += check_blocks(blocks, "/view/blocks", limit=SURFACE_BLOCK_LIMIT, surface=kind)
            has_input = isinstance(blocks, list) and any(
                isinstance(b, dict) and b.get("type") == "input" for b in blocks)
            if kind == "modal" and has_input and view.get("submit") is None:
                out.append("[ERROR] must provide submit when using input blocks "
                           "[json-pointer:/view/submit]")
        for key, limit in (("private_metadata", PRIVATE_METADATA_LIMIT),
                           ("callback_id", CALLBACK_ID_LIMIT),
                           ("external_id", EXTERNAL_ID_LIMIT)):
            value = view.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                out.append(f"[ERROR] must be less than {limit + 1} characters "
                           f"[json-pointer:/view/{key}]")
        return out

    def _validated_view(self, args: dict[str, Any], *, surface: str | None = None
                        ) -> dict[str, Any]:
        if args.get("view") is None:
            raise _invalid("invalid_arguments", ["[ERROR] missing required field: view"])
        problems = self._check_view(args["view"], surface=surface)
        if problems:
            raise _invalid("invalid_arguments", problems)
        return dict(args["view"])

    def _build_view(self, spec: dict[str, Any], view_id: str, *, root_id: str,
                    previous_id: str | None, state: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
        blocks = with_ids(spec.get("blocks") or [])
        values: dict[str, Any] = {}
        if state:
            for b in blocks:
                kept = state.get(b["block_id"])
                if kept:
                    ids = {e.get("action_id") for e in block_elements(b)}
                    kept = {a: v for a, v in kept.items() if a in ids}
                    if kept:
                        values[b["block_id"]] = kept
        return {
            "id": view_id, "team_id": self.team_id, "type": spec.get("type", "modal"),
            "title": spec.get("title"), "submit": spec.get("submit"), "close": spec.get("close"),
            "blocks": blocks, "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""), "external_id": spec.get("external_id", ""),
            "state": {"values": values}, "hash": self._hash(),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "submit_disabled": bool(spec.get("submit_disabled", False)),
            "root_view_id": root_id, "previous_view_id": previous_id, "app_id": self.app_id,
            "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
        }

    def _check_external_id(self, spec: dict[str, Any], own_id: str | None = None) -> None:
        ext = spec.get("external_id")
        if not ext:
            return
        for vid, v in self._views.items():
            if v.get("external_id") == ext and vid != own_id:
                raise SlackError("duplicate_external_id")

    def _exchange_trigger(self, trigger_id: Any) -> _Trigger:
        if not trigger_id:
            raise _invalid("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > TRIGGER_TTL_S:
            raise SlackError("expired_trigger_id")
        return trigger

    def _stack_of(self, view_id: str) -> list[str] | None:
        for stack in self._stacks.values():
            if view_id in stack:
                return stack
        return None

    def _user_stack(self, user_id: str | None) -> list[str] | None:
        for stack in self._stacks.values():
            if stack and self._view_owner.get(stack[0]) == user_id:
                return stack
        return None

    def _replace_view(self, view_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        old = self._views[view_id]
        self._check_external_id(spec, view_id)
        new = self._build_view(spec, view_id, root_id=old["root_view_id"],
                               previous_id=old.get("previous_view_id"),
                               state=old["state"]["values"])
        self._views[view_id] = new
        self.view_errors.pop(view_id, None)
        return new

    def _push_view(self, stack: list[str], spec: dict[str, Any], owner: str) -> dict[str, Any]:
        if len(stack) >= MAX_VIEW_STACK:
            raise SlackError("push_limit_reached")
        self._check_external_id(spec)
        vid = self._new_id("V", self._views)
        view = self._build_view(spec, vid, root_id=stack[0], previous_id=stack[-1])
        self._views[vid] = view
        self._view_owner[vid] = owner
        stack.append(vid)
        return view

    def close_view(self, view_id: str, *, clear: bool = False) -> None:
        """Close a modal view as the user would: the view (and those above it), or all."""
        with self._lock:
            stack = self._stack_of(view_id)
            if stack is None:
                return
            root = stack[0]
            if clear or view_id == root:
                del self._stacks[root]
            else:
                del stack[stack.index(view_id):]

    def set_view_state(self, view_id: str, values: dict[str, Any]) -> None:
        with self._lock:
            self._views[view_id]["state"] = {"values": copy.deepcopy(values)}

    def apply_view_response(self, view_id: str, body: Any) -> None:
        """Apply an app's answer to a ``view_submission`` the way Slack does."""
        with self._lock:
            if not body:
                self.close_view(view_id)
                return
            if not isinstance(body, dict):
                self.problems.append(f"view_submission answer is not JSON: {body!r}")
                return
            action = body.get("response_action")
            owner = self._view_owner.get(view_id, "")
            if action == "errors":
                errors = body.get("errors")
                inputs = {b.get("block_id") for b in self._views[view_id]["blocks"]
                          if b.get("type") == "input"}
                if not isinstance(errors, dict) or not errors:
                    self.problems.append("response_action=errors needs a non-empty errors map")
                    return
                unknown = sorted(set(errors) - inputs)
                if unknown:
                    self.problems.append(f"errors name blocks that are not input blocks of "
                                         f"view {view_id}: {unknown}")
                self.view_errors[view_id] = dict(errors)
            elif action in {"update", "push"}:
                spec = body.get("view")
                problems = self._check_view(spec, surface="modal")
                if problems:
                    self.problems.append(f"response_action={action} with an invalid view: "
                                         f"{problems}")
                    return
                assert isinstance(spec, dict)
                if action == "update":
                    self._replace_view(view_id, spec)
                else:
                    stack = self._stack_of(view_id)
                    if stack is None:
                        self.problems.append("response_action=push on a closed view")
                        return
                    try:
                        self._push_view(stack, spec, owner)
                    except SlackError as exc:
                        self.problems.append(f"response_action=push refused: {exc.error}")
            elif action == "clear":
                self.close_view(view_id, clear=True)
            else:
                self.problems.append(f"unknown response_action {action!r}")

    # ---------------------------------------------------------------- Web API methods

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"https://{self.team_domain}.slack.com/", "team": "Stand-in Team",
                "user": self.bot_name, "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

    def _m_chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"))
        self._check_postable(ch)
        self._check_content(args)
        args = {**args, "metadata": _validated_metadata(args.get("metadata"))}
        stored = self._store_message(ch, self._bot_message(args), args.get("thread_ts"))
        if stored["thread_ts"] and _truthy(args.get("reply_broadcast", False)):
            stored["subtype"] = "thread_broadcast"
        return {"channel": ch.id, "ts": stored["ts"], "message": self._public(stored)}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"), allow_user=False)
        ts = args.get("ts")
        if not ts:
            raise SlackError("message_not_found")
        msg = self._find_message(ch.id, str(ts))
        if msg is None:
            raise SlackError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        if ch.archived:
            raise SlackError("is_inactive")
        self._check_content(args)
        args = {**args, "metadata": _validated_metadata(args.get("metadata"))}
        msg["text"] = str(args.get("text") or "")
        if args.get("blocks") is not None:
            msg["blocks"] = with_ids(args["blocks"])
        if args.get("attachments") is not None:
            msg["attachments"] = args["attachments"]
        if args.get("metadata") is not None:
            msg["metadata"] = args["metadata"]
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": ch.id, "ts": msg["ts"], "text": msg["text"],
                "message": self._public(msg)}

    def _m_chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"), allow_user=False)
        msg = self._find_message(ch.id, str(args.get("ts") or ""))
        if msg is None:
            raise SlackError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        self._messages[ch.id].remove(msg)
        return {"channel": ch.id, "ts": msg["ts"]}

    def _m_chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"))
        user = args.get("user")
        if not user:
            raise _invalid("invalid_arguments", ["[ERROR] missing required field: user"])
        self._check_postable(ch)
        if user not in ch.members:
            raise SlackError("user_not_in_channel")
        self._check_content(args)
        ts = self._next_ts()
        self._ephemerals.append({
            "channel": ch.id, "user": user, "ts": ts, "thread_ts": args.get("thread_ts"),
            "text": str(args.get("text") or ""),
            "blocks": with_ids(args["blocks"]) if args.get("blocks") is not None else None,
            "attachments": args.get("attachments"), "source": "chat.postEphemeral",
        })
        return {"message_ts": ts}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            ch = self._resolve_channel(args["channel"], allow_user=False)
            return {"channel": {"id": ch.id}}
        raw = args.get("users")
        users = raw if isinstance(raw, list) else [u for u in str(raw or "").split(",") if u]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 8:
            raise SlackError("too_many_users")
        for u in users:
            if u not in self._users:
                raise SlackError("user_not_found")
        if len(users) > 1:
            return {"channel": {"id": self._mpim_for(users).id}}
        existed = ("D" + users[0][1:]) in self._channels
        ch = self._im_for(users[0])
        out: dict[str, Any] = {"channel": {"id": ch.id}}
        if _truthy(args.get("return_im", False)):
            out["channel"].update({"created": ch.created, "is_im": True, "is_org_shared": False,
                                   "user": users[0], "is_user_deleted": False})
        if existed:
            out.update({"no_op": True, "already_open": True})
        return out

    def _readable(self, channel: Any) -> _Channel:
        """A conversation the bot may read: by id only; a public channel it is not in gives
        ``not_in_channel``, a private one it is not in does not exist for it."""
        ch = self._channels.get(channel) if isinstance(channel, str) else None
        if ch is None:
            raise SlackError("channel_not_found")
        if not ch.im_user and not ch.bot_member:
            raise SlackError("channel_not_found" if ch.is_private else "not_in_channel")
        return ch

    @staticmethod
    def _window(args: dict[str, Any]) -> tuple[int, int, bool]:
        oldest = _ts_micros(args.get("oldest") or 0, "invalid_ts_oldest")
        latest_arg = args.get("latest")
        latest = (_ts_micros(latest_arg, "invalid_ts_latest") if latest_arg not in (None, "")
                  else None)
        inclusive = _truthy(args.get("inclusive", False))
        return oldest, latest if latest is not None else 2**63, inclusive

    @staticmethod
    def _limit(args: dict[str, Any], default: int, maximum: int) -> int:
        raw = args.get("limit")
        if raw in (None, ""):
            return default
        try:
            limit = int(raw)
        except (TypeError, ValueError):
            raise _invalid("invalid_arguments",
                           ["[ERROR] must be an integer [json-pointer:/limit]"]) from None
        return default if limit <= 0 else min(limit, maximum)

    def _listed(self, stored: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
        msg = self._public(stored)
        if not with_metadata:
            msg.pop("metadata", None)
        return msg

    def _page(self, messages: list[dict[str, Any]], args: dict[str, Any], *, newest_first: bool,
              default_limit: int, maximum: int) -> dict[str, Any]:
        oldest, latest, inclusive = self._window(args)
        after = _from_cursor(args.get("cursor"))
        limit = self._limit(args, default_limit, maximum)

        def in_window(m: dict[str, Any]) -> bool:
            us = _ts_micros(m["ts"], "invalid_ts_latest")
            ok = oldest <= us <= latest if inclusive else oldest < us < latest
            if ok and after is not None:
                ok = us < after if newest_first else us > after
            return ok

        chosen = sorted((m for m in messages if in_window(m)),
                        key=lambda m: _ts_micros(m["ts"], "invalid_ts_latest"),
                        reverse=newest_first)
        page, rest = chosen[:limit], chosen[limit:]
        with_metadata = _truthy(args.get("include_all_metadata", False))
        out: dict[str, Any] = {"messages": [self._listed(m, with_metadata) for m in page],
                               "has_more": bool(rest)}
        if rest:
            out["response_metadata"] = {"next_cursor": _cursor(page[-1]["ts"])}
        return out

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(args.get("channel"))
        top_level = [m for m in self._messages.get(ch.id, [])
                     if not m.get("thread_ts") or m["thread_ts"] == m["ts"]
                     or m.get("subtype") == "thread_broadcast"]
        out = self._page(top_level, args, newest_first=True,
                         default_limit=HISTORY_LIMIT_DEFAULT, maximum=HISTORY_LIMIT_MAX)
        return {**out, "pin_count": 0, "channel_actions_ts": None, "channel_actions_count": 0}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(args.get("channel"))
        ts = args.get("ts")
        msg = self._find_message(ch.id, str(ts)) if ts else None
        if msg is None:
            raise SlackError("thread_not_found")
        root_ts = msg.get("thread_ts") or msg["ts"]
        thread = [m for m in self._messages.get(ch.id, [])
                  if m["ts"] == root_ts or m.get("thread_ts") == root_ts]
        return self._page(thread, args, newest_first=False,
                          default_limit=REPLIES_LIMIT_DEFAULT, maximum=REPLIES_LIMIT_DEFAULT)

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"), allow_user=False)
        info: dict[str, Any] = {"id": ch.id, "created": ch.created, "is_archived": ch.archived}
        if ch.im_user:
            info.update({"is_im": True, "user": ch.im_user})
        else:
            info.update({"name": ch.name, "is_channel": not ch.is_private,
                         "is_group": ch.is_private, "is_private": ch.is_private,
                         "is_member": ch.bot_member, "num_members": len(ch.members)})
        return {"channel": info}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(args.get("trigger_id"))
        spec = self._validated_view(args, surface="modal")
        self._check_external_id(spec)
        trigger.used = True
        vid = self._new_id("V", self._views)
        view = self._build_view(spec, vid, root_id=vid, previous_id=None)
        owner = trigger.user_id or ""
        old = self._user_stack(owner)
        if old is not None:
            del self._stacks[old[0]]
        self._views[vid] = view
        self._view_owner[vid] = owner
        self._stacks[vid] = [vid]
        return {"view": copy.deepcopy(view)}

    def _m_views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(args.get("trigger_id"))
        spec = self._validated_view(args, surface="modal")
        stack = (self._stack_of(trigger.view_id) if trigger.view_id
                 else self._user_stack(trigger.user_id))
        if stack is None:
            raise _invalid("invalid_arguments",
                           ["[ERROR] no open modal to push onto [json-pointer:/trigger_id]"])
        view = self._push_view(stack, spec, self._view_owner.get(stack[0], ""))
        trigger.used = True
        return {"view": copy.deepcopy(view)}

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        if not view_id and not external_id:
            raise _invalid("invalid_arguments",
                           ["[ERROR] either view_id or external_id is required"])
        if not view_id:
            view_id = next((vid for vid, v in self._views.items()
                            if v.get("external_id") == external_id), None)
        if not view_id or view_id not in self._views:
            raise SlackError("not_found")
        current = self._views[view_id]
        if current["type"] == "modal" and not self.is_open(view_id):
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        spec = self._validated_view(args, surface=current["type"])
        return {"view": copy.deepcopy(self._replace_view(view_id, spec))}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not user_id:
            raise _invalid("invalid_arguments", ["[ERROR] missing required field: user_id"])
        if user_id not in self._users:
            raise SlackError("user_not_found")
        spec = self._validated_view(args, surface="home")
        existing = self._homes.get(user_id)
        if existing and args.get("hash") and args["hash"] != self._views[existing]["hash"]:
            raise SlackError("hash_conflict")
        if existing:
            return {"view": copy.deepcopy(self._replace_view(existing, spec))}
        self._check_external_id(spec)
        vid = self._new_id("V", self._views)
        view = self._build_view(spec, vid, root_id=vid, previous_id=None)
        self._views[vid] = view
        self._view_owner[vid] = user_id
        self._homes[user_id] = vid
        return {"view": copy.deepcopy(view)}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _m_users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").strip().lower()
        for user in self._users.values():
            if str(user["profile"].get("email", "")).lower() == email and email:
                return {"user": copy.deepcopy(user)}
        raise SlackError("users_not_found")

    def _m_files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        if not filename:
            raise _invalid("invalid_arguments", ["[ERROR] missing required field: filename"])
        try:
            length = int(args.get("length") or 0)
        except (TypeError, ValueError):
            raise _invalid("invalid_arguments",
                           ["[ERROR] must be an integer [json-pointer:/length]"]) from None
        if length <= 0:
            raise SlackError("missing_argument")
        fid = self._new_id("F", self._files)
        key = secrets.token_hex(16)
        self._upload_keys[key] = fid
        self._files[fid] = {"id": fid, "name": str(filename), "title": str(filename),
                            "length": length, "data": None, "alt_txt": args.get("alt_txt"),
                            "completed": False, "channel": None, "initial_comment": None,
                            "thread_ts": None, "created": int(self.clock())}
        return {"upload_url": f"{self.base_url}/upload/v1/{key}", "file_id": fid}

    def _file_object(self, f: dict[str, Any]) -> dict[str, Any]:
        name = f["name"]
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else "text"
        channels = [f["channel"]] if f.get("channel") else []
        return {
            "id": f["id"], "created": f["created"], "timestamp": f["created"], "name": name,
            "title": f["title"], "mimetype": _MIMETYPES.get(ext, "application/octet-stream"),
            "filetype": ext, "pretty_type": ext.upper(), "user": self.bot_user_id,
            "user_team": self.team_id, "editable": False, "size": len(f["data"] or b""),
            "mode": "hosted", "is_external": False, "external_type": "", "is_public": False,
            "public_url_shared": False, "display_as_bot": False, "username": "",
            "url_private": f"{self.base_url}/files-pri/{self.team_id}-{f['id']}/{name}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/"
                         f"{f['id']}/{name}",
            "channels": channels, "groups": [], "ims": [], "comments_count": 0,
            "has_rich_preview": False, "file_access": "visible",
        }

    def _m_files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            raise _invalid("invalid_arguments", ["[ERROR] missing required field: files"])
        found: list[dict[str, Any]] = []
        for item in files:
            fid = item.get("id") if isinstance(item, dict) else None
            f = self._files.get(str(fid))
            if f is None or f["data"] is None or f["completed"]:
                raise SlackError("file_not_found")
            found.append(f)
        ch: _Channel | None = None
        channel = args.get("channel_id") or (str(args.get("channels") or "").split(",")[0]
                                             or None)
        if channel:
            try:
                ch = self._resolve_channel(channel)
            except SlackError:
                raise SlackError("invalid_channel") from None
            self._check_postable(ch)
        thread_ts = args.get("thread_ts")
        if thread_ts and ch is None:
            raise _invalid("invalid_arguments", ["[ERROR] thread_ts needs channel_id"])
        for item, f in zip(files, found, strict=True):
            f["title"] = str(item.get("title") or f["title"])
            f["completed"] = True
            f["channel"] = ch.id if ch else None
            f["initial_comment"] = args.get("initial_comment")
            f["thread_ts"] = thread_ts
        objects = [self._file_object(f) for f in found]
        if ch is not None:
            msg = self._bot_message({"text": args.get("initial_comment") or "",
                                     "blocks": None if args.get("initial_comment")
                                     else args.get("blocks")})
            msg.update({"files": objects, "upload": True})
            self._store_message(ch, msg, thread_ts)
        return {"files": [{"id": o["id"], "title": o["title"]} for o in objects]}

    # ---------------------------------------------------------------- HTTP plumbing

    def handle_api(self, method: str, args: dict[str, Any], token: str | None
                   ) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        """The answer to one Web API call; None when an intercept leaves it unanswered."""
        icp = self._take_intercept(method, args)
        if icp is not None and not icp.carry_out:
            if icp.hook is not None:
                icp.hook(copy.deepcopy(args))
            return None
        with self._lock:
            status, headers, body = self._answer(method, args, token)
            self._calls.append(RecordedCall(method, copy.deepcopy(args), copy.deepcopy(body),
                                            status, self.clock()))
        if icp is not None:
            if icp.hook is not None:
                icp.hook(copy.deepcopy(args))
            if not icp.answer:
                return None
        return status, headers, body

    def _answer(self, method: str, args: dict[str, Any], token: str | None
                ) -> tuple[int, dict[str, str], dict[str, Any]]:
        handler_name = _METHODS.get(method)
        if handler_name is None:
            return 200, {}, {"ok": False, "error": "unknown_method", "req_method": method}
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.bot_token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        queue = self._faults.get(method)
        if queue:
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            return fault.status, headers, {"ok": False, "error": fault.error, **fault.extra}
        try:
            result = getattr(self, handler_name)(args)
        except SlackError as exc:
            return 200, {}, exc.body()
        return 200, {}, {"ok": True, **result}

    def handle_upload(self, key: str, data: bytes) -> tuple[int, str]:
        with self._lock:
            fid = self._upload_keys.get(key)
            if fid is None:
                return 404, "Not Found"
            expected = self._files[fid]["length"]
            if len(data) != expected:
                # the ticket stays open: a correct retry of the bytes still works
                return 400, f"length mismatch: got {len(data)} bytes, ticket says {expected}"
            del self._upload_keys[key]
            self._files[fid]["data"] = data
        return 200, f"OK - {len(data)}"

    def handle_response_url(self, key: str, payload: Any) -> tuple[int, str]:
        with self._lock:
            ru = self._response_urls.get(key)
            if ru is None:
                return 404, "no_service"
            if self.clock() - ru.issued_at > RESPONSE_URL_TTL_S:
                return 404, "expired_url"
            if ru.uses >= RESPONSE_URL_MAX_USES:
                return 404, "used_url"
            if not isinstance(payload, dict):
                return 400, "invalid_payload"
            ru.uses += 1
            self._responses.append({"url": f"{self.base_url}/response/{key}",
                                    "user": ru.user_id, "channel": ru.channel_id,
                                    "message_ts": ru.message_ts, "payload": copy.deepcopy(payload),
                                    "at": self.clock()})
            try:
                self._apply_response(ru, payload)
            except SlackError as exc:
                return 400, exc.error
        return 200, "ok"

    def _apply_response(self, ru: _ResponseUrl, payload: dict[str, Any]) -> None:
        if _truthy(payload.get("delete_original", False)):
            self._delete_original(ru)
            return
        self._check_content(payload)
        replace = _truthy(payload.get("replace_original", False))
        if replace and ru.message_ts and not ru.is_ephemeral and ru.channel_id:
            msg = self._find_message(ru.channel_id, ru.message_ts)
            if msg is None:
                raise SlackError("message_not_found")
            msg["text"] = str(payload.get("text") or "")
            msg["blocks"] = with_ids(payload.get("blocks") or [])
            if "attachments" in payload:
                msg["attachments"] = payload["attachments"]
            msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return
        if replace and ru.is_ephemeral:
            for e in self._ephemerals:
                if e["ts"] == ru.message_ts and e["user"] == ru.user_id:
                    e.update({"text": str(payload.get("text") or ""),
                              "blocks": with_ids(payload.get("blocks") or [])})
                    return
        if payload.get("response_type") == "in_channel" and ru.channel_id:
            ch = self._channels.get(ru.channel_id) or self._resolve_channel(ru.channel_id)
            thread = payload.get("thread_ts")
            self._store_message(ch, self._bot_message(payload), thread)
            return
        self._ephemerals.append({
            "channel": ru.channel_id, "user": ru.user_id, "ts": self._next_ts(),
            "thread_ts": payload.get("thread_ts"), "text": str(payload.get("text") or ""),
            "blocks": with_ids(payload["blocks"]) if payload.get("blocks") else None,
            "attachments": payload.get("attachments"), "source": "response_url",
        })

    def _delete_original(self, ru: _ResponseUrl) -> None:
        if ru.is_ephemeral:
            self._ephemerals = [e for e in self._ephemerals
                                if not (e["ts"] == ru.message_ts and e["user"] == ru.user_id)]
            return
        if ru.channel_id and ru.message_ts:
            msg = self._find_message(ru.channel_id, ru.message_ts)
            if msg is not None:
                self._messages[ru.channel_id].remove(msg)

    def add_ephemeral(self, channel_id: str | None, user_id: str, payload: dict[str, Any],
                      source: str) -> dict[str, Any]:
        """Show a message to one user, as Slack does with a slash command's immediate answer."""
        with self._lock:
            record = {"channel": channel_id, "user": user_id, "ts": self._next_ts(),
                      "thread_ts": None, "text": str(payload.get("text") or ""),
                      "blocks": with_ids(payload["blocks"]) if payload.get("blocks") else None,
                      "attachments": payload.get("attachments"), "source": source}
            self._ephemerals.append(record)
            return copy.deepcopy(record)

    def add_bot_message(self, channel_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            ch = self._resolve_channel(channel_id)
            return copy.deepcopy(self._store_message(ch, self._bot_message(payload), None))

    def user(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            u = self._users.get(user_id)
            return copy.deepcopy(u) if u else None

    def channel_name(self, channel_id: str) -> str:
        with self._lock:
            ch = self._channels.get(channel_id)
            if ch is None:
                return channel_id
            return "directmessage" if ch.im_user else ch.name

    def channels_of(self, user_id: str) -> list[str]:
        with self._lock:
            return [c.id for c in self._channels.values()
                    if user_id in c.members and not c.im_user]

    def dm_channel(self, user_id: str) -> str:
        with self._lock:
            return self._im_for(user_id).id

    def is_member(self, channel_id: str, user_id: str) -> bool:
        with self._lock:
            ch = self._channels.get(channel_id)
            return ch is not None and user_id in ch.members


_MIMETYPES = {"csv": "text/csv", "txt": "text/plain", "text": "text/plain",
              "pdf": "application/pdf", "png": "image/png", "json": "application/json",
              "ics": "text/calendar"}

_METHODS: dict[str, str] = {
    "auth.test": "_m_auth_test",
    "chat.postMessage": "_m_chat_post_message",
    "chat.update": "_m_chat_update",
    "chat.delete": "_m_chat_delete",
    "chat.postEphemeral": "_m_chat_post_ephemeral",
    "conversations.open": "_m_conversations_open",
    "conversations.info": "_m_conversations_info",
    "conversations.history": "_m_conversations_history",
    "conversations.replies": "_m_conversations_replies",
    "views.open": "_m_views_open",
    "views.push": "_m_views_push",
    "views.update": "_m_views_update",
    "views.publish": "_m_views_publish",
    "users.info": "_m_users_info",
    "users.lookupByEmail": "_m_users_lookup_by_email",
    "files.getUploadURLExternal": "_m_files_get_upload_url_external",
    "files.completeUploadExternal": "_m_files_complete_upload_external",
}


def _decode_json_fields(args: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_FIELDS:
        value = args.get(key)
        if isinstance(value, str) and value.strip()[:1] in {"[", "{"}:
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes | None]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    file_data: bytes | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            file_data = payload
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", "replace")
    return fields, file_data


class _Handler(BaseHTTPRequestHandler):
    standin: SlackStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the caller is gone (killed)
            self.close_connection = True

    def _send_json(self, status: int, payload: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8",
                   headers)

    def do_GET(self) -> None:
        self._route(b"")

    def do_POST(self) -> None:
        self._route(self._body())

    def _route(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if self.standin.oidc.handles(path):
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, ctype, payload, extra = self.standin.oidc.handle(self.command, path, parts.query,
                                                                    body, headers)
            self._send(status, payload, ctype, extra)
        elif path.startswith("/api/"):
            self._api(path[len("/api/"):], parts.query, body)
        elif path.startswith("/upload/v1/"):
            ctype = self.headers.get("Content-Type", "")
            data = body
            if ctype.startswith("multipart/form-data"):
                _, file_data = _multipart(ctype, body)
                data = file_data if file_data is not None else body
            status, text = self.standin.handle_upload(path.rsplit("/", 1)[-1], data)
            self._send(status, text.encode(), "text/plain; charset=utf-8")
        elif path.startswith("/response/") and self.command == "POST":
            try:
                payload: Any = json.loads(body or b"null")
            except ValueError:
                payload = None
            status, text = self.standin.handle_response_url(path.rsplit("/", 1)[-1], payload)
            self._send(status, text.encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"Not Found", "text/plain; charset=utf-8")

    def _api(self, method: str, query: str, body: bytes) -> None:
        args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        is_json = False
        if body:
            if ctype == "application/json":
                try:
                    data = json.loads(body)
                except ValueError:
                    self._send_json(200, {"ok": False, "error": "invalid_json"})
                    return
                if not isinstance(data, dict):
                    self._send_json(200, {"ok": False, "error": "invalid_json"})
                    return
                args.update(data)
                is_json = True
            elif ctype in {"application/x-www-form-urlencoded", "text/plain"}:
                args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            elif ctype == "multipart/form-data":
                fields, _ = _multipart(self.headers.get("Content-Type", ""), body)
                args.update(fields)
            elif not ctype:
                self._send_json(200, {"ok": False, "error": "missing_post_type"})
                return
            else:
                self._send_json(200, {"ok": False, "error": "invalid_post_type"})
                return
        token: str | None = None
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        body_token = args.pop("token", None)
        if token is None and not is_json and body_token:
            token = str(body_token)
        result = self.standin.handle_api(method, _decode_json_fields(args), token)
        if result is None:  # intercepted: no answer reaches the caller
            self.close_connection = True
            return
        status, headers, answer = result
        self._send_json(status, answer, headers)

