"""The sandbox console: a Slack-like page where a person drives the real app as a demo member.

The browser never talks to the app directly. It sends ``{user, action…}`` to these routes, and
they build the payload Slack would send (slash command, block_actions, view_submission,
view_closed, app_home_opened) with :class:`SlackSender`, signed with the sandbox's secret, so
the app is driven over signed HTTP exactly as in a real workspace. What the app sent back is
read from the Slack stand-in and shown to the current user only (ephemerals, DMs, modals).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import requests

from app.scheduler import job_specs
from app.web import Route, WebRequest, WebResponse
from bot import signin, web_sessions
from bot.config import is_loopback_host
from bot.errors import NotAllowed
from bot.outbox import deliver
from bot.secure_links import login_path, safe_next
from sandbox.slack_standin.blocks import block_elements
from sandbox.slack_standin.sender import state_value
from sandbox.state import Sandbox

log = logging.getLogger("prescreen.sandbox")

STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                ".png": "image/png", ".svg": "image/svg+xml"}
# Jobs the clock control does not run: they do not depend on the time of day.
CLOCK_SKIPS = {"housekeeping", "graph_sync"}
MAX_ADVANCE_MINUTES = 7 * 24 * 60
CLOCK_STEPS = 60
DELIVER_SECONDS = 1.5
FILE_TYPES = {"png": "image/png", "csv": "text/csv", "txt": "text/plain", "pdf": "application/pdf",
              "json": "application/json", "ics": "text/calendar"}


# The secure page's session cookie: the sandbox serves it over http on loopback, so without the
# __Host- prefix (pages/framework.py).
SESSION_COOKIE = "prescreen_session"


class ConsoleError(Exception):
    """A request the console refuses (400) with a message for the person at the keyboard."""


def static_routes(port: int) -> dict[tuple[str, str], Route]:
    return {("GET", "/static/"): same_origin_only(_static, port)}


def _loopback_authority(authority: str, port: int) -> bool:
    """``host[:port]`` names this machine's loopback interface on the console's port."""
    try:
        parts = urlsplit("//" + authority)
        host, actual = parts.hostname, parts.port or 80
    except ValueError:
        return False
    return bool(host) and is_loopback_host(str(host)) and actual == port


def same_origin_only(route: Route, port: int) -> Route:
    """Answer only requests addressed to the loopback console (a Host that is not loopback is
    DNS rebinding) and, when the browser says where they come from, from the console itself:
    a page on another site cannot drive the sandbox."""
    def checked(req: WebRequest) -> WebResponse:
        origin = req.headers.get("origin")
        foreign = origin is not None and not (
            origin.startswith("http://") and _loopback_authority(origin[len("http://"):], port))
        if foreign or not _loopback_authority(req.headers.get("host", ""), port):
            log.warning("sandbox console: refused a request from another site or host name")
            return WebResponse.text(
                f"Forbidden: open the sandbox console at http://127.0.0.1:{port}/", 403)
        return route(req)
    return checked


def _is_json(req: WebRequest) -> bool:
    return req.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def _static(req: WebRequest) -> WebResponse:
    name = req.path[len("/static/"):]
    if not name or "/" in name or name.startswith(".") or "." not in name:
        return WebResponse.text("not found", 404)
    suffix = name[name.rindex("."):]
    if suffix not in STATIC_TYPES:
        return WebResponse.text("not found", 404)
    path = resources.files("sandbox").joinpath("static", name)
    if not path.is_file():
        return WebResponse.text("not found", 404)
    body = path.read_bytes()
    ctype = STATIC_TYPES[suffix]
    if ctype.startswith("text/"):
        ctype += "; charset=utf-8"
    return WebResponse(200, body, [("content-type", ctype), ("cache-control", "no-cache"),
                                   ("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"),
                                   ("content-security-policy", "frame-ancestors 'none'")])


def _member_ids(sandbox: Sandbox) -> set[str]:
    return {m["slack_id"] for m in sandbox.members}


def _user(sandbox: Sandbox, data: dict[str, Any]) -> str:
    user = str(data.get("user") or "")
    if user not in _member_ids(sandbox):
        raise ConsoleError("Pick a demo member first.")
    return user


def _cookie(req: WebRequest, name: str) -> str | None:
    for pair in req.headers.get("cookie", "").split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key == name:
            return value
    return None


def _page_user(ctx: Any, raw: str) -> str | None:
    """Who is signed in to the secure page with this session cookie, if anyone still is."""
    try:
        signed_in = web_sessions.resume(ctx, raw)
    except NotAllowed:
        return None  # their sessions are already ended
    return signed_in.user_id if signed_in else None


def state_for(sandbox: Sandbox, user: str) -> dict[str, Any]:
    """What ``user`` would see in Slack right now: their channels, DM, ephemerals, modal, home."""
    s = sandbox.standin
    channels = [c for c in sandbox.channels if s.is_member(c["id"], user)]
    dm = s.dm_channel(user)
    messages = {c["id"]: s.messages(c["id"]) for c in channels}
    messages[dm] = s.messages(dm)
    stack = s.view_stack(user)
    modal = stack[-1] if stack else None
    errors = s.view_errors.get(modal["id"], {}) if modal else {}
    return {
        "now": sandbox.clock.now().isoformat(),
        "user": user,
        "members": [{"id": m["slack_id"], "name": m.get("name", m["slack_id"]),
                     "roles": m.get("roles") or {}, "timezone": m.get("timezone") or "UTC"}
                    for m in sandbox.members],
        "bot_user": s.bot_user_id,
        "channels": channels,
        "dm": {"id": dm, "name": s.bot_name},
        "messages": messages,
        "ephemerals": s.ephemerals(user),
        "modal": modal,
        "modal_depth": len(stack),
        "modal_errors": errors,
        "home": s.home(user),
        # where the app's links to the secure page point: the console opens them signed in
        "secure_base": sandbox.ctx.settings.public_url if sandbox.ctx is not None else None,
    }


def _find_message(sandbox: Sandbox, user: str, channel: str, ts: str) -> dict[str, Any]:
    s = sandbox.standin
    for e in s.ephemerals(user):
        if e["ts"] == ts:
            return e
    for m in s.messages(channel):
        if m["ts"] == ts:
            return m
    raise ConsoleError("That message is gone; refresh.")


def _element(blocks: list[dict[str, Any]], block_id: str, action_id: str) -> dict[str, Any]:
    for block in blocks:
        if block.get("block_id") != block_id:
            continue
        for el in block_elements(block):
            if el.get("action_id") == action_id:
                return el
    raise ConsoleError(f"Nothing named {action_id} is on screen.")


def _values(blocks: list[dict[str, Any]], raw: dict[str, Any]) -> dict[str, Any]:
    """``view.state.values`` from the browser's ``{block_id: {action_id: raw}}``."""
    out: dict[str, Any] = {}
    for block_id, by_action in (raw or {}).items():
        for action_id, value in (by_action or {}).items():
            el = _element(blocks, block_id, action_id)
            out.setdefault(block_id, {})[action_id] = state_value(el, _clean(value))
    return out


def _clean(value: Any) -> Any:
    return None if value in ("", []) else value


def _action(sandbox: Sandbox, blocks: list[dict[str, Any]], data: dict[str, Any], *,
            message: dict[str, Any] | None, view: str | None) -> dict[str, Any]:
    block_id = str(data.get("block_id") or "")
    action_id = str(data.get("action_id") or "")
    el = _element(blocks, block_id, action_id)
    if el.get("type") == "button":
        return sandbox.sender.button(action_id, el.get("value"), block_id=block_id,
                                     message=message, view=view)
    action = {**state_value(el, _clean(data.get("value"))), "action_id": action_id,
              "block_id": block_id, "action_ts": f"{time.time():.6f}"}
    if el.get("placeholder"):
        action["placeholder"] = el["placeholder"]
    return action


def _answer(resp: requests.Response | None) -> dict[str, Any]:
    if resp is None:
        return {"ok": True, "status": 200, "response": None}
    body: Any
    try:
        body = resp.json() if resp.content else None
    except ValueError:
        body = resp.text
    return {"ok": resp.status_code == 200, "status": resp.status_code, "response": body}


def console_routes(sandbox: Sandbox) -> dict[tuple[str, str], Route]:
    def guarded(fn: Any) -> Route:
        def route(req: WebRequest) -> WebResponse:
            if req.method == "POST" and not _is_json(req):  # a form post or no-cors fetch
                return WebResponse.json({"ok": False, "error": "Send JSON (application/json)."}, 415)
            try:
                data = req.json() if req.method == "POST" else {
                    k: v[-1] for k, v in req.query.items()}
                if not isinstance(data, dict):
                    raise ConsoleError("Send a JSON object.")
                return WebResponse.json(fn(data))
            except (ConsoleError, AssertionError, KeyError, ValueError) as exc:
                # AssertionError: the sender refuses what Slack's client would not send
                return WebResponse.json({"ok": False, "error": str(exc).strip("'\"")}, 400)
        return route

    def page(_req: WebRequest) -> WebResponse:
        return _static(WebRequest("GET", "/static/index.html", {}, {}, b""))

    def state(data: dict[str, Any]) -> dict[str, Any]:
        return state_for(sandbox, _user(sandbox, data))

    def command(data: dict[str, Any]) -> dict[str, Any]:
        user = _user(sandbox, data)
        channel = str(data.get("channel") or sandbox.channels[0]["id"])
        text = str(data.get("text") or "").strip()
        if not text.startswith("/prescreen"):
            raise ConsoleError("The sandbox knows one command: /prescreen (try /prescreen help).")
        text = text[len("/prescreen"):].strip()
        return _answer(sandbox.sender.slash_command(user, text=text, channel_id=channel))

    def action(data: dict[str, Any]) -> dict[str, Any]:
        user = _user(sandbox, data)
        s = sandbox.standin
        view_id = data.get("view_id")
        if view_id:
            view = s.view(str(view_id))
            values = _values(view["blocks"], data.get("values") or {}) if view["type"] == "modal" \
                else None
            act = _action(sandbox, view["blocks"], data, message=None, view=view["id"])
            resp = sandbox.sender.block_actions(user, [act], view=view["id"], values=values)
            return _answer(resp)
        channel = str(data.get("channel") or "")
        msg = _find_message(sandbox, user, channel, str(data.get("ts") or ""))
        act = _action(sandbox, msg.get("blocks") or [], data, message=msg, view=None)
        resp = sandbox.sender.block_actions(user, [act], message=msg,
                                            channel_id=msg.get("channel") or channel)
        return _answer(resp)

    def submit(data: dict[str, Any]) -> dict[str, Any]:
        user = _user(sandbox, data)
        view = sandbox.standin.view(str(data.get("view_id") or ""))
        values = _values(view["blocks"], data.get("values") or {})
        return _answer(sandbox.sender.view_submission(user, view["id"], values))

    def close(data: dict[str, Any]) -> dict[str, Any]:
        user = _user(sandbox, data)
        return _answer(sandbox.sender.view_closed(user, str(data.get("view_id") or "")))

    def home(data: dict[str, Any]) -> dict[str, Any]:
        return _answer(sandbox.sender.app_home_opened(_user(sandbox, data)))

    def clock(data: dict[str, Any]) -> dict[str, Any]:
        try:
            minutes = int(data.get("minutes") or 0)
        except (TypeError, ValueError):
            minutes = 0
        if not 0 < minutes <= MAX_ADVANCE_MINUTES:
            raise ConsoleError(f"Move the clock by 1 to {MAX_ADVANCE_MINUTES} minutes.")
        jobs = run_due_jobs(sandbox, minutes)
        return {"ok": True, "now": sandbox.clock.now().isoformat(), "jobs": jobs}

    def file(req: WebRequest) -> WebResponse:
        """A file the app uploaded (e.g. the weekly chart), for a member who can see it."""
        user = (req.query.get("user") or [""])[-1]
        fid = (req.query.get("id") or [""])[-1]
        if user not in _member_ids(sandbox):
            return WebResponse.text("pick a demo member", 400)
        s = sandbox.standin
        for f in s.uploaded_files:
            if f["id"] == fid and f.get("completed") and f.get("channel") and (
                    s.is_member(f["channel"], user) or f["channel"] == s.dm_channel(user)):
                name = str(f.get("name") or "")
                ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
                ctype = FILE_TYPES.get(ext, "application/octet-stream")
                return WebResponse(200, bytes(f.get("data") or b""), [
                    ("content-type", ctype), ("x-content-type-options", "nosniff"),
                    ("content-disposition", "inline" if ctype.startswith("image/")
                     else "attachment")])
        return WebResponse.text("not found", 404)

    def secure(req: WebRequest) -> WebResponse:
        """The secure page, signed in with the stand-in's Sign in with Slack as the member the
        console is acting as: Slack's authorize page sends them straight back. ``next`` is the
        page to land on (a link to the secure page in a Slack message or modal); a session of
        another member in this browser is ended first, as if they had signed out."""
        user = (req.query.get("user") or [""])[-1]
        if user not in _member_ids(sandbox):
            return WebResponse.text("pick a demo member", 400)
        target = safe_next((req.query.get("next") or [""])[-1] or None)
        sandbox.standin.sign_in_as(user)
        headers = [("cache-control", "no-store"), ("referrer-policy", "no-referrer")]
        raw = _cookie(req, SESSION_COOKIE)
        if raw and sandbox.ctx is not None:
            signed_in_as = _page_user(sandbox.ctx, raw)
            if signed_in_as == user:
                return WebResponse(302, b"", [("location", target), *headers])
            if signed_in_as is not None:
                signin.sign_out(sandbox.ctx, raw, signed_in_as)
            headers.append(("set-cookie", f"{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; "
                                          "Max-Age=0"))
        return WebResponse(302, b"", [("location", login_path(target)), *headers])

    routes: dict[tuple[str, str], Route] = {
        ("GET", "/"): page,
        ("GET", "/sandbox/secure"): secure,
        ("GET", "/sandbox/file"): file,
        ("GET", "/sandbox/state"): guarded(state),
        ("POST", "/sandbox/command"): guarded(command),
        ("POST", "/sandbox/action"): guarded(action),
        ("POST", "/sandbox/submit"): guarded(submit),
        ("POST", "/sandbox/close"): guarded(close),
        ("POST", "/sandbox/home"): guarded(home),
        ("POST", "/sandbox/clock"): guarded(clock),
    }
    return {key: same_origin_only(route, sandbox.port) for key, route in routes.items()}


def run_due_jobs(sandbox: Sandbox, minutes: int = 0) -> dict[str, str]:
    """Move the clock ``minutes`` forward the way time passes: in steps (at most
    :data:`CLOCK_STEPS`, at least a minute each), running every time-driven job at each step as
    the worker would, then deliver what they queued. Reminders, escalations and digests show up
    at once, and a reminder due within the jump is sent on time, not "late"."""
    ctx = sandbox.ctx
    results: dict[str, str] = {}
    specs = [j for j in job_specs() if j.name not in CLOCK_SKIPS | {"outbox"}]
    steps = max(1, min(CLOCK_STEPS, minutes))
    done = 0.0
    for i in range(1, steps + 1):
        target = minutes * i / steps
        if minutes:
            sandbox.clock.advance(dt.timedelta(minutes=target - done))
            done = target
        if ctx is None:
            continue
        for spec in specs:
            summary = _run(ctx, spec)
            if summary or spec.name not in results:
                results[spec.name] = summary
    if ctx is not None:
        results["outbox"] = _deliver(ctx)
    return results


def _deliver(ctx: Any) -> str:
    """Deliver what is due for a moment (the outbox paces each channel as Slack asks); the
    worker's own outbox ticks send the rest, so the person at the console is not kept waiting."""
    try:
        stats = deliver(ctx, max_seconds=DELIVER_SECONDS)
    except Exception as exc:
        log.exception("sandbox clock: delivery failed")
        return f"failed: {type(exc).__name__}"
    return str(stats) if (stats.sent or stats.failed or stats.retried) else ""


def _run(ctx: Any, spec: Any) -> str:
    try:
        return str(spec.func(ctx) or "")
    except Exception as exc:
        log.exception("sandbox clock: job %s failed", spec.name)
        return f"failed: {type(exc).__name__}"
