"""The secure page's framework: routing under /secure, sessions, CSRF, templates, headers, errors.

Contract for feature modules (``def register(pages: Pages) -> None``)::

    @pages.route("GET", "/c/{ref}")              # relative to /secure; signed_in=True by default
    def card(req: PageRequest) -> Response:
        return pages.render(req, "card.html", ref=req.params["ref"])

- ``PageRequest.web`` is the raw request as the web edge hands it over: any object with
  ``method, path, query (dict of lists), headers (lower-case names), body (bytes), remote``
  (:class:`RawRequest`; app/web.py's WebRequest is one). pages never imports app/.
- A route answers a :class:`Response` (status, body, headers); the edge sends it as is.
- Signed-in routes without a valid session redirect to /secure/login?next=<this path>.
- Every POST is CSRF-checked before the route runs (the form's ``csrf_token`` against the
  session's, in constant time); a bad or missing token is the 403 "This form expired" page.
- ``bot.errors.NotAllowed`` → 403 page with its text; ``UnknownCandidate``/``UnknownStudy`` → 404
  page with its text; any other DomainError → 400 page with its text; anything else → 500 page
  with an error reference, logged without request data.
- Every response carries the security headers of :data:`SECURITY_HEADERS`.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from bot import web_sessions
from bot.context import AppContext
from bot.errors import DomainError, NotAllowed, UnknownCandidate, UnknownStudy
from bot.logging_setup import exception_summary
from bot.secure_links import HOME, LOGIN, LOGOUT, PREFIX, login_path, safe_next

log = logging.getLogger("prescreen.pages")

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", "default-src 'none'; script-src 'self'; style-src 'self'; "
     "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
)
FORM_EXPIRED = "This form expired. Reload the page and try again."
STATIC_DIR = Path(__file__).parent / "static"
_STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,60}\.(css|js|svg|png)")
_STATIC_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
                 "svg": "image/svg+xml", "png": "image/png"}
_MAX_FORM_FIELDS = 200
_FORM = "application/x-www-form-urlencoded"
LOGIN_COOKIE_TTL_S = 10 * 60


class RawRequest(Protocol):
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    remote: str


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PageRequest:
    ctx: AppContext
    web: RawRequest
    user_id: str | None  # the signed-in Slack user
    csrf_token: str  # this session's form token ("" when nobody is signed in)
    params: dict[str, str]  # path parameters
    form: dict[str, str]  # POST body, already CSRF-checked
    args: dict[str, str]  # query string (last value of each name)
    cookies: dict[str, str] = field(default_factory=dict)
    session: web_sessions.SignedIn | None = None


Handler = Callable[[PageRequest], Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler
    signed_in: bool


class _FormError(Exception):
    pass


class Pages:
    """The secure page's router and renderer, one per process."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.routes: list[_Route] = []
        self.env = Environment(loader=PackageLoader("pages", "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(prefix=PREFIX, home_path=HOME, logout_path=LOGOUT,
                                login_path=LOGIN)

    # ------------------------------------------------------------------ cookies

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies (with the __Host- prefix) unless PUBLIC_URL is http on loopback."""
        url = self.ctx.settings.public_url or ""
        return not url.startswith("http://")

    def cookie_name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure_cookies else base

    @property
    def session_cookie(self) -> str:
        return self.cookie_name("prescreen_session")

    @property
    def login_cookie(self) -> str:
        return self.cookie_name("prescreen_login")

    def set_cookie(self, resp: Response, name: str, value: str, *, max_age: int | None = None
                   ) -> None:
        parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if self.secure_cookies:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        resp.headers.append(("set-cookie", "; ".join(parts)))

    def clear_cookie(self, resp: Response, name: str) -> None:
        self.set_cookie(resp, name, "", max_age=0)

    # ------------------------------------------------------------------ routes

    def route(self, method: str, pattern: str, *, signed_in: bool = True
              ) -> Callable[[Handler], Handler]:
        if not pattern.startswith("/"):
            raise ValueError("a page pattern starts with / (relative to /secure)")
        regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern)) + "$")

        def register(handler: Handler) -> Handler:
            self.routes.append(_Route(method.upper(), pattern, regex, handler, signed_in))
            return handler

        return register

    def _match(self, method: str, rel: str) -> tuple[_Route | None, dict[str, str], bool]:
        other_method = False
        for r in self.routes:
            m = r.regex.match(rel)
            if m is None:
                continue
            if r.method == method:
                return r, m.groupdict(), False
            other_method = True
        return None, {}, other_method

    # ------------------------------------------------------------------ rendering

    def render(self, req: PageRequest, template: str, status: int = 200, **values: Any) -> Response:
        html = self.env.get_template(template).render(
            user_id=req.user_id, csrf_token=req.csrf_token,
            csrf_field=lambda: _csrf_field(req.csrf_token), **values)
        return Response(status, html, [("content-type", "text/html; charset=utf-8")])

    def redirect(self, req: PageRequest, location: str) -> Response:
        """To a path of the secure page only (anything else goes home)."""
        target = safe_next(location)
        return Response(303 if req.web.method == "POST" else 302, b"", [("location", target)])

    def external_redirect(self, url: str) -> Response:
        """To Slack's sign-in page: the one redirect away from the page, built by us."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("not a web address")
        return Response(302, b"", [("location", url)])

    def error_page(self, req: PageRequest, status: int, message: str, **values: Any) -> Response:
        return self.render(req, "error.html", status=status, status_text=HTTPStatus(status).phrase,
                           message=message, **values)

    # ------------------------------------------------------------------ the edge

    def handle(self, raw: RawRequest) -> Response:
        """One request under /secure, whatever happens with the security headers on it."""
        req = PageRequest(self.ctx, raw, None, "", {}, {}, _args(raw.query),
                          _cookies(raw.headers.get("cookie", "")))
        try:
            resp = self._dispatch(req)
        except Exception as exc:
            ref = secrets.token_hex(4)
            log.error("secure page failed ref=%s for %s: %s", ref, raw.method,
                      exception_summary(exc))
            try:
                resp = self.error_page(req, 500, f"Something went wrong on our side (error reference "
                                                 f"{ref}). Try again; if it keeps happening, send the "
                                                 f"reference to your admin.", error_ref=ref)
            except Exception:
                resp = Response(500, f"Internal error (reference {ref}).",
                                [("content-type", "text/plain; charset=utf-8")])
        resp.headers.extend(SECURITY_HEADERS)
        return resp

    def _dispatch(self, req: PageRequest) -> Response:
        raw = req.web
        if raw.path == PREFIX:
            return self.redirect(req, HOME)
        if not raw.path.startswith(PREFIX + "/"):
            return self.error_page(req, 404, "There is no page here.")
        rel = raw.path[len(PREFIX):]
        if rel.startswith("/static/") and raw.method in ("GET", "HEAD"):
            return self._static(req, rel[len("/static/"):])
        route, params, other_method = self._match(raw.method, rel)
        if route is None:
            if other_method:
                resp = self.error_page(req, 405, "This page cannot be used that way.")
                return resp
            return self.error_page(req, 404, "There is no page here. Check the link, or start "
                                             "from the home page.")
        req.params = params
        try:
            req.session = web_sessions.resume(self.ctx, req.cookies.get(self.session_cookie))
        except NotAllowed as exc:
            resp = self.error_page(req, 403, exc.message)
            self.clear_cookie(resp, self.session_cookie)
            return resp
        if req.session is not None:
            req.user_id, req.csrf_token = req.session.user_id, req.session.csrf_token
        if raw.method == "POST":
            try:
                form = _form(raw)
            except _FormError:
                return self.error_page(req, 400, "That form arrived damaged. Reload the page and "
                                                 "try again.")
            if not web_sessions.csrf_ok(req.session, form.get("csrf_token")):
                log.warning("refused a secure-page form without a valid CSRF token")
                return self.error_page(req, 403, FORM_EXPIRED)
            form.pop("csrf_token", None)
            req.form = form
        if route.signed_in and req.session is None:
            here = raw.path + ("?" + urlencode(req.args) if req.args else "")
            return Response(302, b"", [("location", login_path(safe_next(here)))])
        try:
            return route.handler(req)
        except NotAllowed as exc:
            return self.error_page(req, 403, exc.message)
        except (UnknownCandidate, UnknownStudy) as exc:
            return self.error_page(req, 404, exc.message)
        except DomainError as exc:
            return self.error_page(req, 400, exc.message)

    def _static(self, req: PageRequest, name: str) -> Response:
        m = _STATIC_NAME.fullmatch(name)
        path = STATIC_DIR / name
        if m is None or not path.is_file():
            return self.error_page(req, 404, "There is no file here.")
        return Response(200, path.read_bytes(), [("content-type", _STATIC_TYPES[m.group(1)])])


def _csrf_field(token: str) -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(token))


def _args(query: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in query.items() if v}


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:  # the first of two same-named cookies wins
            out[name] = value.strip().strip('"')
    return out


def _form(raw: RawRequest) -> dict[str, str]:
    media = (raw.headers.get("content-type") or "").split(";")[0].strip().lower()
    if raw.body and media != _FORM:
        raise _FormError
    try:
        pairs = parse_qsl(raw.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          errors="strict", max_num_fields=_MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise _FormError from None
    return dict(pairs)
