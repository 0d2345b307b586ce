"""The WSGI application: POST /slack/events, GET /healthz, and extra routes (sandbox console).

Requests to /slack/events are checked here, at the edge, before anything reads them: the body is
read only up to a limit, Slack's signature and timestamp are verified on the raw bytes, and only
then is the body decoded (strict UTF-8) and checked to be the form or JSON Slack sends. Whatever
fails gets a 4xx and one WARNING line naming the reason and the peer, never a header or body."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from slack_bolt import App
from slack_bolt.request import BoltRequest

from bot.clock import Clock, SystemClock
from bot.logging_setup import exception_summary
from integrations import metrics
from storage.db import Database

log = logging.getLogger("prescreen.web")

# The largest body any route accepts, sized for Slack's largest real payload, a view_submission:
# Slack echoes the whole view (views.open refuses views over 250 kB) plus every input's state,
# JSON-escaped (non-ASCII as \uXXXX) and url-encoded. Measured with the app's largest modal, the
# log-call form at 100 blocks (84 choice questions with long Spanish labels and options, 239 kB
# of view) and every text input at its max_length in non-ASCII text: 381 kB on the wire, 1.6x
# the view. At Slack's 250 kB view cap that is about 0.4 MB. 1 MiB leaves 2.5x margin (a
# modal of 100 text inputs at Slack's 3,000 characters each would need ~2.4 MB; the app has no
# such form) and keeps a forged request cheap: one HMAC over at most 1 MiB, nothing parsed.
MAX_BODY = 1024 * 1024
SIGNATURE_MAX_AGE_S = 5 * 60  # Slack's replay window: a timestamp further off is refused
_READ_CHUNK = 64 * 1024
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # decimal seconds; no sign, exponent or junk
_LENGTH = re.compile(r"[0-9]{1,15}")
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_MAX_FORM_FIELDS = 100  # a slash command has ~15 fields, an interaction one (payload)


class Refused(Exception):
    """A request refused before any handler saw it. ``reason`` is a fixed phrase: it is logged,
    so it must never carry anything taken from the request."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class WebRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    remote: str = ""  # the peer's address, for log lines

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class WebResponse:
    status: int = 200
    body: bytes | str = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> WebResponse:
        return cls(status, json.dumps(data), [("content-type", "application/json")])

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> WebResponse:
        return cls(status, text, [("content-type", f"{content_type}; charset=utf-8")])


Route = Callable[[WebRequest], WebResponse]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SlackWebApp:
    """Minimal router in front of Bolt. Everything else is 404.

    ``clock`` is the edge's time source for the signature's freshness check. It is wall time by
    default, not the app's business clock: Slack stamps requests with real time, and the sandbox
    moves its business clock by days."""

    def __init__(self, bolt: App, db: Database, routes: dict[tuple[str, str], Route] | None = None,
                 prefix_routes: dict[tuple[str, str], Route] | None = None, *,
                 signing_secret: str, clock: Clock | None = None,
                 metrics_token: str | None = None,
                 metrics_live: metrics.Gauges | None = None) -> None:
        if not signing_secret:
            raise ValueError("a signing secret is required to serve /slack/events")
        self.bolt = bolt
        self.db = db
        self.signing_secret = signing_secret.encode()
        self.clock: Clock = clock or SystemClock()
        self.routes: dict[tuple[str, str], Route] = {
            ("POST", "/slack/events"): self._slack,
            ("GET", "/healthz"): self._health,
        }
        self.routes.update(routes or {})
        self.prefix_routes = prefix_routes or {}
        self.metrics_token = metrics_token.encode() if metrics_token else None
        self.metrics_live = metrics_live
        if self.metrics_token:  # without a token the path does not exist (404)
            self.routes[("GET", "/metrics")] = self._metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "/") or "/"
        remote = str(environ.get("REMOTE_ADDR") or "-")
        try:
            body = read_body(environ, MAX_BODY)
        except Refused as refused:
            resp = self._refuse(refused, path, remote)
        else:
            headers = {
                k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
            }
            if environ.get("CONTENT_TYPE"):
                headers["content-type"] = environ["CONTENT_TYPE"]
            req = WebRequest(method, path, parse_qs(environ.get("QUERY_STRING", "")), headers, body,
                             remote)
            resp = self._route(req)
        payload = resp.body.encode("utf-8") if isinstance(resp.body, str) else resp.body
        status = HTTPStatus(resp.status)
        headers = [*resp.headers, ("content-length", str(len(payload)))]
        start_response(f"{status.value} {status.phrase}", headers)
        return [payload]

    def _route(self, req: WebRequest) -> WebResponse:
        handler = self.routes.get((req.method, req.path))
        where = req.path
        if handler is None:
            for (method, prefix), h in self.prefix_routes.items():
                if method == req.method and req.path.startswith(prefix):
                    handler, where = h, prefix + "…"
                    break
        if handler is None:
            allowed = [m for (m, p) in self.routes if p == req.path]
            if allowed:
                return WebResponse(405, b"method not allowed", [("allow", ", ".join(allowed))])
            return WebResponse.text("not found", 404)
        try:
            return handler(req)
        except Refused as refused:
            return self._refuse(refused, req.path, req.remote)
        except Exception as exc:
            # The route, the exception's type and where it was raised; not its message, which can
            # quote the request, and no local variables.
            log.error("web handler failed for %s %s: %s", req.method, where, exception_summary(exc))
            return WebResponse.text("internal error", 500)

    def _refuse(self, refused: Refused, path: str, remote: str) -> WebResponse:
        where = path if path in {p for (_m, p) in self.routes} else "-"
        log.warning("refused request to %s from %s: %s (%d)", where, remote, refused.reason,
                    refused.status)
        return WebResponse.text(HTTPStatus(refused.status).phrase.lower(), refused.status)

    def _slack(self, req: WebRequest) -> WebResponse:
        self.verify_signature(req.headers, req.body)
        content_type, text = slack_body(req.headers.get("content-type", ""), req.body)
        headers = {k: [v] for k, v in req.headers.items()}
        headers["content-type"] = [content_type]  # the canonical media type Bolt compares with
        try:
            bolt_req = BoltRequest(
                body=text,
                query={k: v for k, v in req.query.items()},
                headers=headers,
            )
        except (TypeError, AttributeError, KeyError, ValueError):
            # Bolt reads the envelope (user, team, channel…) while building the request; a field
            # of the wrong type is a payload Slack never sends.
            raise Refused(400, "malformed payload") from None
        started = time.perf_counter()
        bolt_resp = self.bolt.dispatch(bolt_req)
        metrics.ack(request_kind(bolt_req.body), time.perf_counter() - started)
        headers_out = [(k, v) for k, vs in bolt_resp.headers.items() for v in vs
                       if k.lower() != "content-length"]
        return WebResponse(bolt_resp.status, bolt_resp.body or "", headers_out)

    def verify_signature(self, headers: dict[str, str], body: bytes) -> None:
        """Slack's request signature, on the raw bytes: ``v0=`` + HMAC-SHA256 of
        ``v0:{timestamp}:{body}`` with the signing secret, the timestamp within five minutes of
        the edge's clock. Raises :class:`Refused` (401)."""
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            raise Refused(401, "missing signature")
        # A repeated header arrives joined with commas, and fails these patterns too.
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Refused(401, "malformed timestamp")
        if not _SIGNATURE.fullmatch(signature):
            raise Refused(401, "malformed signature")
        if abs(self.clock.now().timestamp() - int(timestamp)) > SIGNATURE_MAX_AGE_S:
            raise Refused(401, "stale timestamp")
        mac = hmac.new(self.signing_secret, b"v0:" + timestamp.encode("ascii") + b":", hashlib.sha256)
        mac.update(body)
        if not hmac.compare_digest("v0=" + mac.hexdigest(), signature):
            raise Refused(401, "bad signature")

    def _metrics(self, req: WebRequest) -> WebResponse:
        """Prometheus text, behind `Authorization: Bearer <METRICS_TOKEN>` (constant time)."""
        given = req.headers.get("authorization", "").encode()
        if not (self.metrics_token and hmac.compare_digest(given, b"Bearer " + self.metrics_token)):
            return WebResponse(401, b"unauthorized", [("www-authenticate", "Bearer")])
        body, content_type = metrics.render(self.metrics_live)
        return WebResponse(200, body, [("content-type", content_type)])

    def _health(self, _req: WebRequest) -> WebResponse:
        if self.db.ping():
            return WebResponse.json({"ok": True, "db": "ok"})
        return WebResponse.json({"ok": False, "db": "unreachable"}, status=503)


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, never more than ``limit`` bytes read: a declared length over the limit
    is refused before reading; a body without one (chunked, on a server that ends the input) is
    read until the limit and refused past it."""
    stream = environ.get("wsgi.input")
    declared = environ.get("CONTENT_LENGTH")
    if declared not in (None, ""):
        if not _LENGTH.fullmatch(str(declared)):
            raise Refused(400, "malformed content-length")
        length = int(declared)
        if length > limit:
            raise Refused(413, "body too large")
        return _read(stream, length) if length else b""
    if not environ.get("HTTP_TRANSFER_ENCODING"):
        return b""
    if not environ.get("wsgi.input_terminated"):
        # The server hands over the raw stream: nothing says where the body ends.
        raise Refused(411, "body without a length")
    body = _read(stream, limit + 1)
    if len(body) > limit:
        raise Refused(413, "body too large")
    return body


def _read(stream: Any, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        chunk = stream.read(min(left, _READ_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def slack_body(content_type: str, body: bytes) -> tuple[str, str]:
    """Decode a verified body strictly: the media type Slack uses for it (form for commands and
    interactions, JSON for events), UTF-8, and well formed, so that Bolt's own parsing cannot
    fail on it. Returns the canonical media type and the text. Raises :class:`Refused`."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media not in (_FORM, _JSON):
        raise Refused(415, "unsupported content type")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                "utf-8", "utf8"):
            raise Refused(415, "unsupported charset")
    if not body:
        raise Refused(400, "empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    if media == _JSON:
        _json_object(text)
        return media, text
    if text.startswith("{"):  # Bolt would read it as JSON; Slack never sends a form like that
        raise Refused(400, "malformed form")
    try:
        fields = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict",
                           max_num_fields=_MAX_FORM_FIELDS)
    except ValueError:  # bad pairs, too many fields, percent-escapes that are not UTF-8
        raise Refused(400, "malformed form") from None
    names = [name for name, _ in fields]
    if len(set(names)) != len(names):
        raise Refused(400, "repeated form field")
    payload = dict(fields).get("payload")
    if payload is not None:
        _json_object(payload)
    return media, text


def _json_object(text: str) -> None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be Slack's
        raise Refused(400, "malformed JSON") from None
    if not isinstance(value, dict):
        raise Refused(400, "malformed JSON")


def request_kind(body: Any) -> str:
    """The kind of a Slack request, from a fixed vocabulary (a metrics label)."""
    if not isinstance(body, dict):
        return "other"
    if "command" in body:
        return "command"
    kind = body.get("type")
    if kind == "event_callback":
        return "event"
    if kind in ("shortcut", "message_action"):
        return "shortcut"
    return metrics.label(kind, metrics.REQUEST_KINDS)
