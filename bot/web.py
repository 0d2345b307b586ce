"""The WSGI application: POST /slack/events, GET /healthz, and extra routes (sandbox console)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App
from slack_bolt.request import BoltRequest

from storage.db import Database

log = logging.getLogger("prescreen.web")

MAX_BODY = 2 * 1024 * 1024  # Slack payloads are far smaller; refuse anything larger


@dataclass
class WebRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

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
    """Minimal router in front of Bolt. Everything else is 404."""

    def __init__(self, bolt: App, db: Database, routes: dict[tuple[str, str], Route] | None = None,
                 prefix_routes: dict[tuple[str, str], Route] | None = None) -> None:
        self.bolt = bolt
        self.db = db
        self.routes: dict[tuple[str, str], Route] = {
            ("POST", "/slack/events"): self._slack,
            ("GET", "/healthz"): self._health,
        }
        self.routes.update(routes or {})
        self.prefix_routes = prefix_routes or {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "/") or "/"
        if length > MAX_BODY:
            resp = WebResponse.text("payload too large", 413)
        else:
            body = environ["wsgi.input"].read(length) if length else b""
            headers = {
                k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
            }
            if environ.get("CONTENT_TYPE"):
                headers["content-type"] = environ["CONTENT_TYPE"]
            req = WebRequest(method, path, parse_qs(environ.get("QUERY_STRING", "")), headers, body)
            resp = self._route(req)
        payload = resp.body.encode("utf-8") if isinstance(resp.body, str) else resp.body
        status = HTTPStatus(resp.status)
        headers = [*resp.headers, ("content-length", str(len(payload)))]
        start_response(f"{status.value} {status.phrase}", headers)
        return [payload]

    def _route(self, req: WebRequest) -> WebResponse:
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            for (method, prefix), h in self.prefix_routes.items():
                if method == req.method and req.path.startswith(prefix):
                    handler = h
                    break
        if handler is None:
            allowed = [m for (m, p) in self.routes if p == req.path]
            if allowed:
                return WebResponse(405, b"method not allowed", [("allow", ", ".join(allowed))])
            return WebResponse.text("not found", 404)
        try:
            return handler(req)
        except Exception:
            log.exception("web handler failed for %s %s", req.method, req.path)
            return WebResponse.text("internal error", 500)

    def _slack(self, req: WebRequest) -> WebResponse:
        bolt_req = BoltRequest(
            body=req.body.decode("utf-8"),
            query={k: v for k, v in req.query.items()},
            headers={k: [v] for k, v in req.headers.items()},
        )
        bolt_resp = self.bolt.dispatch(bolt_req)
        headers = [(k, v) for k, vs in bolt_resp.headers.items() for v in vs
                   if k.lower() != "content-length"]
        return WebResponse(bolt_resp.status, bolt_resp.body or "", headers)

    def _health(self, _req: WebRequest) -> WebResponse:
        if self.db.ping():
            return WebResponse.json({"ok": True, "db": "ok"})
        return WebResponse.json({"ok": False, "db": "unreachable"}, status=503)
