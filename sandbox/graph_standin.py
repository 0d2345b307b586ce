"""A local stand-in for the Microsoft identity platform and the Graph calendar endpoints.

Serves, in the documented shapes: the OIDC discovery document and the v2.0 token endpoint
(client credentials with a secret or a certificate assertion, AADSTS errors), and Graph
`calendarView`, `calendarView/delta`, `calendar/getSchedule` and `$batch`. Plain HTTP for the
sandbox (where the app uses a fixed sandbox token), or HTTPS when given an ssl context (tests use
real msal against it). Faults (429/503/504 with Retry-After, 410 delta resets) can be scripted.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import secrets
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import jwt
from cryptography import x509

from integrations.graph.tz import to_iana, to_windows

SANDBOX_TOKEN = "sandbox-graph-token"  # accepted only by a stand-in started with static_tokens
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
STATUS_CODE = {"free": "0", "workingElsewhere": "0", "tentative": "1", "busy": "2", "oof": "3"}


@dataclass
class FakeEvent:
    id: str
    subject: str
    start: dt.datetime  # aware; for all-day events ignored in favour of the dates
    end: dt.datetime
    is_all_day: bool = False
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    show_as: str = "busy"
    sensitivity: str = "normal"
    is_cancelled: bool = False
    join_url: str | None = None
    type: str = "singleInstance"
    series_master_id: str | None = None


@dataclass
class FakeMailbox:
    address: str
    timezone: str
    work_days: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")
    work_start: str = "09:00:00.0000000"
    work_end: str = "17:00:00.0000000"
    events: dict[str, FakeEvent] = field(default_factory=dict)
    changes: list[tuple[int, str]] = field(default_factory=list)
    version: int = 0
    generation: int = 1

    def span(self, ev: FakeEvent) -> tuple[dt.datetime, dt.datetime]:
        if ev.is_all_day and ev.start_date and ev.end_date:
            tz = ZoneInfo(self.timezone)
            return (
                dt.datetime.combine(ev.start_date, dt.time(), tz).astimezone(dt.UTC),
                dt.datetime.combine(ev.end_date, dt.time(), tz).astimezone(dt.UTC),
            )
        return ev.start.astimezone(dt.UTC), ev.end.astimezone(dt.UTC)


@dataclass
class Fault:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    path_contains: str | None
    remaining: int


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    inner: bool = False


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _unb64(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _parse_instant(value: str) -> dt.datetime:
    v = value.strip().replace("Z", "+00:00")
    if "." in v:
        head, rest = v.split(".", 1)
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        v = head + "." + digits[:6] + rest[len(digits) :]
    parsed = dt.datetime.fromisoformat(v)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _parse_prefer(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip().lower()] = v.strip().strip('"')
    return out


class GraphStandin:
    """In-memory tenant with mailboxes, served over HTTP(S) on 127.0.0.1."""

    def __init__(
        self,
        *,
        tenant_id: str = "contoso-test",
        client_id: str = "11111111-2222-3333-4444-555555555555",
        client_secret: str | None = "test-secret-value",
        certificate_pem: bytes | None = None,
        static_tokens: Iterable[str] = (),
        roles: Iterable[str] = ("Calendars.Read",),
        token_lifetime: int = 3599,
        default_page_size: int = 10,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.certificate_pem = certificate_pem
        self.secret_expired = False
        self.roles = list(roles)
        self.token_lifetime = token_lifetime
        self.default_page_size = default_page_size
        self.repeat_items = False
        self.latency = 0.0  # seconds each Graph request takes (to observe concurrency)
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()  # per mailbox, the most concurrent requests seen
        self.mailboxes: dict[str, FakeMailbox] = {}
        self.tokens: dict[str, float] = {t: float("inf") for t in static_tokens}
        self.faults: list[Fault] = []
        self.recorded: list[Recorded] = []
        self.calls: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ----- lifecycle -----

    def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> GraphStandin:
        standin = self

        class Handler(_Handler):
            pass

        Handler.standin = standin
        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        self._server = server
        self.url = f"{scheme}://{host}:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, name="graph-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def authority_host(self) -> str:
        return self.url

    # ----- data -----

    def add_mailbox(self, address: str, timezone: str = "America/New_York", **working: Any) -> FakeMailbox:
        with self._lock:
            mb = FakeMailbox(address=address.lower(), timezone=timezone, **working)
            self.mailboxes[mb.address] = mb
            return mb

    def _mb(self, address: str) -> FakeMailbox:
        return self.mailboxes[address.lower()]

    def _touch(self, mb: FakeMailbox, event_id: str) -> None:
        mb.version += 1
        mb.changes.append((mb.version, event_id))

    def add_event(
        self, mailbox: str, subject: str, start: dt.datetime, end: dt.datetime, **fields: Any
    ) -> str:
        with self._lock:
            mb = self._mb(mailbox)
            event_id = fields.pop("id", None) or f"AAMkAD{next(self._ids):08d}{secrets.token_hex(4)}="
            mb.events[event_id] = FakeEvent(event_id, subject, start, end, **fields)
            self._touch(mb, event_id)
            return event_id

    def add_all_day(self, mailbox: str, subject: str, day: dt.date, days: int = 1, **fields: Any) -> str:
        fields.setdefault("show_as", "oof")
        midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
        return self.add_event(
            mailbox,
            subject,
            midnight,
            midnight + dt.timedelta(days=days),
            is_all_day=True,
            start_date=day,
            end_date=day + dt.timedelta(days=days),
            **fields,
        )

    def add_series(
        self,
        mailbox: str,
        subject: str,
        first_start: dt.datetime,
        duration: dt.timedelta,
        count: int,
        every: dt.timedelta = dt.timedelta(days=1),
        **fields: Any,
    ) -> list[str]:
        """Occurrences of a recurring series (calendarView returns occurrences, not the master)."""
        master = f"AAMkSERIES{next(self._ids):06d}="
        tz = first_start.tzinfo
        out = []
        for i in range(count):
            local = (first_start.replace(tzinfo=None) + every * i).replace(tzinfo=tz)  # same wall-clock time
            out.append(
                self.add_event(
                    mailbox,
                    subject,
                    local,
                    local + duration,
                    type="occurrence",
                    series_master_id=master,
                    **fields,
                )
            )
        return out

    def update_event(self, mailbox: str, event_id: str, **changes: Any) -> None:
        with self._lock:
            mb = self._mb(mailbox)
            mb.events[event_id] = replace(mb.events[event_id], **changes)
            self._touch(mb, event_id)

    def delete_event(self, mailbox: str, event_id: str) -> None:
        with self._lock:
            mb = self._mb(mailbox)
            del mb.events[event_id]
            self._touch(mb, event_id)

    def expire_delta_tokens(self, mailbox: str) -> None:
        """Every delta/skip token issued for the mailbox now answers 410 Gone."""
        with self._lock:
            self._mb(mailbox).generation += 1

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: str | None = None,
        path_contains: str | None = None,
        code: str | None = None,
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        default_codes = {
            429: "TooManyRequests",
            503: "ServiceUnavailable",
            504: "GatewayTimeout",
            410: "SyncStateNotFound",
        }
        body = {
            "error": {
                "code": code or default_codes.get(status, "Error"),
                "message": "Injected by the Graph stand-in.",
            }
        }
        with self._lock:
            self.faults.append(Fault(status, headers, body, path_contains, count))

    def graph_requests(self, kind: str | None = None) -> list[Recorded]:
        with self._lock:
            rows = [r for r in self.recorded if r.path.startswith("/v1.0")]
        if kind:
            rows = [r for r in rows if r.path.endswith(kind)]
        return rows

    # ----- HTTP entry point -----

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        lower_headers = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.recorded.append(Recorded(method, path, query, lower_headers))
        if path.startswith("/v1.0/"):
            segs = path.split("/")
            mailbox = segs[3].lower() if len(segs) > 3 and segs[2] == "users" else ""
            with self._lock:
                self.in_flight[mailbox] += 1
                self.max_in_flight[mailbox] = max(self.max_in_flight[mailbox], self.in_flight[mailbox])
            try:
                if self.latency:
                    time.sleep(self.latency)
                status, hdrs, payload = self._graph(method, path, query, lower_headers, body, outer=True)
            finally:
                with self._lock:
                    self.in_flight[mailbox] -= 1
        else:
            status, hdrs, payload = self._identity(method, path, body)
        hdrs = {"Content-Type": "application/json", **hdrs}
        return status, hdrs, json.dumps(payload).encode() if payload is not None else b""

    # ----- identity platform -----

    def _aad_error(self, status: int, error: str, code: int, text: str) -> tuple[int, dict[str, str], Any]:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace = secrets.token_hex(8)
        return (
            status,
            {},
            {
                "error": error,
                "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Timestamp: {now}",
                "error_codes": [code],
                "timestamp": now,
                "trace_id": trace,
                "correlation_id": secrets.token_hex(8),
                "error_uri": f"{self.url}/error?code={code}",
            },
        )

    def _identity(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        segs = [s for s in path.split("/") if s]
        if not segs:
            return 404, {}, {"error": "not_found"}
        tenant = segs[0]
        if tenant != self.tenant_id:
            self.calls["identity_unknown_tenant"] += 1
            return self._aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        base = f"{self.url}/{tenant}"
        if method == "GET" and segs[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self.calls["discovery"] += 1
            return (
                200,
                {},
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_post",
                        "private_key_jwt",
                        "client_secret_basic",
                    ],
                    "jwks_uri": f"{base}/discovery/v2.0/keys",
                    "response_modes_supported": ["query", "fragment", "form_post"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "issuer": f"{base}/v2.0",
                    "request_uri_parameter_supported": False,
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                    "tenant_region_scope": "NA",
                },
            )
        if method == "POST" and segs[1:] == ["oauth2", "v2.0", "token"]:
            return self._token(parse_qs(body.decode()), f"{base}/oauth2/v2.0/token")
        return 404, {}, {"error": "not_found"}

    def _token(self, form: dict[str, list[str]], endpoint: str) -> tuple[int, dict[str, str], Any]:
        self.calls["token"] += 1
        get = lambda k: (form.get(k) or [""])[0]  # noqa: E731
        if get("grant_type") != "client_credentials":
            return self._aad_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        if get("client_id") != self.client_id:
            return self._aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{get('client_id')}' was not found in the "
                f"directory '{self.tenant_id}'.",
            )
        if not get("scope").endswith("/.default"):
            return self._aad_error(
                400, "invalid_scope", 1002012, "The provided value for scope is not valid."
            )
        if get("client_assertion"):
            if not self._assertion_ok(get("client_assertion"), endpoint):
                return self._aad_error(
                    401, "invalid_client", 700027, "Client assertion failed signature validation."
                )
        elif get("client_secret"):
            if self.client_secret is None or get("client_secret") != self.client_secret:
                return self._aad_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID.",
                )
            if self.secret_expired:
                return self._aad_error(
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{self.client_id}' are expired.",
                )
        else:
            return self._aad_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'.",
            )
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = dt.datetime.now(dt.UTC).timestamp() + self.token_lifetime
        return (
            200,
            {},
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
        )

    def _assertion_ok(self, assertion: str, audience: str) -> bool:
        if not self.certificate_pem:
            return False

        cert = x509.load_pem_x509_certificate(self.certificate_pem)
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),
                algorithms=["PS256", "RS256"],  # type: ignore[arg-type]
                audience=audience,
            )
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == self.client_id and claims.get("sub") == self.client_id

    # ----- Graph -----

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.remaining > 0 and (f.path_contains is None or f.path_contains in path):
                    f.remaining -= 1
                    return f
        return None

    def _graph(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes | Any,
        *,
        outer: bool,
    ) -> tuple[int, dict[str, str], Any]:
        rel = path[len("/v1.0") :]
        kind = (
            "$batch"
            if rel == "/$batch"
            else "delta"
            if rel.endswith("/delta")
            else "getSchedule"
            if rel.endswith("/getSchedule")
            else "calendarView"
            if rel.endswith("/calendarView")
            else "other"
        )
        self.calls[kind if outer else f"batch:{kind}"] += 1
        if outer:
            auth = headers.get("authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else ""
            expiry = self.tokens.get(token)
            if expiry is None or expiry < dt.datetime.now(dt.UTC).timestamp():
                return (
                    401,
                    {},
                    {
                        "error": {
                            "code": "InvalidAuthenticationToken",
                            "message": "Access token validation failure. Invalid audience.",
                        }
                    },
                )
        if not self.roles:
            return (
                403,
                {},
                {
                    "error": {
                        "code": "ErrorAccessDenied",
                        "message": "Access is denied. Check credentials and try again.",
                    }
                },
            )
        fault = self._take_fault(path)
        if fault is not None:
            return fault.status, dict(fault.headers), fault.body
        if isinstance(body, bytes | bytearray):
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                return 400, {}, {"error": {"code": "BadRequest", "message": "Invalid JSON."}}
        else:
            payload = body
        if kind == "$batch" and method == "POST":
            return self._batch(payload or {}, headers)
        segs = rel.strip("/").split("/")
        if len(segs) < 3 or segs[0] != "users":
            return (
                404,
                {},
                {"error": {"code": "BadRequest", "message": f"Resource not found for the segment '{rel}'."}},
            )
        mailbox = self.mailboxes.get(segs[1].lower())
        if mailbox is None:
            return (
                404,
                {},
                {
                    "error": {
                        "code": "ErrorInvalidUser",
                        "message": f"The requested user '{segs[1]}' is invalid.",
                    }
                },
            )
        prefer = _parse_prefer(headers.get("prefer"))
        tz_name = prefer.get("outlook.timezone", "UTC")
        if to_iana(tz_name) is None:
            return (
                400,
                {},
                {"error": {"code": "ErrorInvalidTimeZone", "message": f"Invalid timezone '{tz_name}'."}},
            )
        with self._lock:
            if kind == "calendarView" and method == "GET":
                return self._calendar_view(mailbox, rel, query, prefer, tz_name)
            if kind == "delta" and method == "GET":
                return self._delta(mailbox, rel, query, prefer, tz_name)
            if kind == "getSchedule" and method == "POST":
                return self._get_schedule(payload or {}, tz_name)
        return 405, {}, {"error": {"code": "BadRequest", "message": "Unsupported method."}}

    def _dtz(self, instant: dt.datetime, tz_name: str) -> dict[str, str]:
        local = instant.astimezone(ZoneInfo(to_iana(tz_name) or "UTC"))
        return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz_name}

    def _render(
        self, mb: FakeMailbox, ev: FakeEvent, tz_name: str, select: set[str] | None
    ) -> dict[str, Any]:
        if ev.is_all_day and ev.start_date and ev.end_date:
            start = {"dateTime": f"{ev.start_date.isoformat()}T00:00:00.0000000", "timeZone": tz_name}
            end = {"dateTime": f"{ev.end_date.isoformat()}T00:00:00.0000000", "timeZone": tz_name}
        else:
            start, end = self._dtz(ev.start, tz_name), self._dtz(ev.end, tz_name)
        full: dict[str, Any] = {
            "@odata.etag": f'W/"{secrets.token_hex(6)}"',
            "id": ev.id,
            "createdDateTime": "2025-01-02T15:00:00.0000000Z",
            "lastModifiedDateTime": "2025-01-02T15:00:00.0000000Z",
            "iCalUId": f"040000008200E00074C5B7101A82E008{ev.id[-8:]}",
            "subject": ev.subject,
            "bodyPreview": "",
            "importance": "normal",
            "sensitivity": ev.sensitivity,
            "isAllDay": ev.is_all_day,
            "isCancelled": ev.is_cancelled,
            "isOrganizer": False,
            "showAs": ev.show_as,
            "type": ev.type,
            "seriesMasterId": ev.series_master_id,
            "start": start,
            "end": end,
            "location": {"displayName": ""},
            "isOnlineMeeting": ev.join_url is not None,
            "onlineMeetingProvider": "teamsForBusiness" if ev.join_url else "unknown",
            "onlineMeeting": {"joinUrl": ev.join_url} if ev.join_url else None,
            "organizer": {"emailAddress": {"name": "Organizer", "address": mb.address}},
        }
        if select:
            return {k: v for k, v in full.items() if k in select or k in ("id", "@odata.etag")}
        return full

    def _in_window(self, mb: FakeMailbox, ev: FakeEvent, start: dt.datetime, end: dt.datetime) -> bool:
        s, e = mb.span(ev)
        return s < end and e > start

    def _page_size(self, prefer: dict[str, str]) -> int:
        try:
            return max(1, int(prefer.get("odata.maxpagesize", self.default_page_size)))
        except ValueError:
            return self.default_page_size

    def _calendar_view(
        self, mb: FakeMailbox, rel: str, query: dict[str, list[str]], prefer: dict[str, str], tz_name: str
    ) -> tuple[int, dict[str, str], Any]:
        try:
            start = _parse_instant(query["startDateTime"][0])
            end = _parse_instant(query["endDateTime"][0])
        except (KeyError, ValueError):
            return (
                400,
                {},
                {
                    "error": {
                        "code": "ErrorInvalidParameter",
                        "message": "This request requires a time window specified by the query "
                        "string parameters StartDateTime and EndDateTime.",
                    }
                },
            )
        select = set(query["$select"][0].split(",")) if "$select" in query else None
        events = sorted(
            (e for e in mb.events.values() if self._in_window(mb, e, start, end)),
            key=lambda e: (mb.span(e)[0], e.id),
        )
        skip = int((query.get("$skip") or ["0"])[0])
        size = self._page_size(prefer)
        page = events[skip : skip + size]
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/$metadata#users('{mb.address}')/calendarView",
            "value": [self._render(mb, e, tz_name, select) for e in page],
        }
        if skip + size < len(events):
            q = {k: v[0] for k, v in query.items() if k != "$skip"}
            q["$skip"] = str(skip + size)
            body["@odata.nextLink"] = f"{self.graph_url}{rel}?{urlencode(q, safe='$,/:')}"
        applied = f'outlook.timezone="{tz_name}"'
        if "odata.maxpagesize" in prefer:
            applied += f", odata.maxpagesize={size}"
        return 200, {"Preference-Applied": applied}, body

    def _delta(
        self, mb: FakeMailbox, rel: str, query: dict[str, list[str]], prefer: dict[str, str], tz_name: str
    ) -> tuple[int, dict[str, str], Any]:
        if "$select" in query:
            return (
                400,
                {},
                {
                    "error": {
                        "code": "ErrorInvalidUrlQuery",
                        "message": "The query parameter '$select' is not supported with delta.",
                    }
                },
            )
        gone = (
            410,
            {},
            {
                "error": {
                    "code": "SyncStateNotFound",
                    "message": "The sync state generation is not found. The delta token is "
                    "expired and data must be synchronized again.",
                }
            },
        )
        if "$deltatoken" in query or "$skiptoken" in query:
            try:
                state = _unb64((query.get("$deltatoken") or query.get("$skiptoken") or [""])[0])
            except ValueError:
                return gone
            if state.get("g") != mb.generation:
                return gone
            start, end = _parse_instant(state["s"]), _parse_instant(state["e"])
            if "$deltatoken" in query:
                state = {**state, "o": 0, "since": state["v"], "v": mb.version}
        else:
            try:
                start = _parse_instant(query["startDateTime"][0])
                end = _parse_instant(query["endDateTime"][0])
            except (KeyError, ValueError):
                return (
                    400,
                    {},
                    {
                        "error": {
                            "code": "ErrorInvalidParameter",
                            "message": "startDateTime and endDateTime are required.",
                        }
                    },
                )
            state = {
                "g": mb.generation,
                "s": start.isoformat(),
                "e": end.isoformat(),
                "o": 0,
                "since": None,
                "v": mb.version,
            }
        since = state.get("since")
        if since is None:
            ids = [
                e.id
                for e in sorted(mb.events.values(), key=lambda e: (mb.span(e)[0], e.id))
                if self._in_window(mb, e, start, end)
            ]
        else:
            ids = list(dict.fromkeys(i for v, i in mb.changes if since < v <= state["v"]))
        offset, size = int(state["o"]), self._page_size(prefer)
        page = ids[offset : offset + size]
        if self.repeat_items and offset > 0:
            page = [ids[offset - 1], *page]
        items: list[dict[str, Any]] = []
        for i in page:
            ev = mb.events.get(i)
            if ev is not None and self._in_window(mb, ev, start, end):
                items.append(self._render(mb, ev, tz_name, None))
            else:
                items.append(
                    {"@odata.type": "#microsoft.graph.event", "id": i, "@removed": {"reason": "deleted"}}
                )
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/$metadata#Collection(event)",
            "value": items,
        }
        base = f"{self.graph_url}/users/{mb.address}/calendarView/delta"
        if offset + size < len(ids):
            body["@odata.nextLink"] = f"{base}?$skiptoken={_b64({**state, 'o': offset + size})}"
        else:
            token = {"g": state["g"], "s": state["s"], "e": state["e"], "v": state["v"]}
            body["@odata.deltaLink"] = f"{base}?$deltatoken={_b64(token)}"
        return 200, {"Preference-Applied": f"odata.maxpagesize={size}"}, body

    def _get_schedule(self, payload: dict[str, Any], tz_name: str) -> tuple[int, dict[str, str], Any]:
        schedules = payload.get("schedules") or []
        if not schedules or len(schedules) > 20:
            return (
                400,
                {},
                {
                    "error": {
                        "code": "ErrorInvalidParameter",
                        "message": "schedules must list between 1 and 20 addresses.",
                    }
                },
            )
        try:
            start = self._from_dtz(payload["startTime"])
            end = self._from_dtz(payload["endTime"])
        except (KeyError, ValueError):
            return (
                400,
                {},
                {"error": {"code": "ErrorInvalidParameter", "message": "startTime/endTime required."}},
            )
        interval = int(payload.get("availabilityViewInterval") or 30)
        if not 5 <= interval <= 1440:
            return (
                400,
                {},
                {
                    "error": {
                        "code": "ErrorInvalidParameter",
                        "message": "availabilityViewInterval must be 5 to 1440.",
                    }
                },
            )
        out = []
        for address in schedules:
            mb = self.mailboxes.get(str(address).lower())
            if mb is None:
                out.append(
                    {
                        "scheduleId": address,
                        "availabilityView": "",
                        "error": {
                            "message": f"The mailbox '{address}' could not be found.",
                            "responseCode": "ErrorMailRecipientNotFound",
                        },
                        "scheduleItems": [],
                    }
                )
                continue
            items = []
            spans = []
            for ev in sorted(mb.events.values(), key=lambda e: (mb.span(e)[0], e.id)):
                if ev.is_cancelled or ev.show_as == "free" or not self._in_window(mb, ev, start, end):
                    continue
                s, e = mb.span(ev)
                spans.append((s, e, ev.show_as))
                private = ev.sensitivity == "private"
                item: dict[str, Any] = {
                    "isPrivate": private,
                    "status": ev.show_as,
                    "start": self._dtz(s, tz_name),
                    "end": self._dtz(e, tz_name),
                }
                if not private:
                    item.update(
                        {
                            "subject": ev.subject,
                            "location": "",
                            "isMeeting": ev.join_url is not None,
                            "isRecurring": ev.type != "singleInstance",
                            "isException": False,
                            "isReminderSet": True,
                        }
                    )
                items.append(item)
            view = []
            step = dt.timedelta(minutes=interval)
            t = start
            while t < end:
                codes = [STATUS_CODE.get(sa, "2") for s, e, sa in spans if s < t + step and e > t]
                view.append(max(codes) if codes else "0")
                t += step
            out.append(
                {
                    "scheduleId": address,
                    "availabilityView": "".join(view),
                    "scheduleItems": items,
                    "workingHours": {
                        "daysOfWeek": list(mb.work_days),
                        "startTime": mb.work_start,
                        "endTime": mb.work_end,
                        "timeZone": {"name": to_windows(mb.timezone)},
                    },
                }
            )
        return (
            200,
            {},
            {
                "@odata.context": (
                    f"{self.graph_url}/$metadata#Collection(microsoft.graph.scheduleInformation)"
                ),
                "value": out,
            },
        )

    def _from_dtz(self, value: dict[str, Any]) -> dt.datetime:
        raw = str(value["dateTime"])
        naive = (
            _parse_instant(raw).replace(tzinfo=None)
            if raw.endswith("Z")
            else dt.datetime.fromisoformat(raw[:19])
        )
        return naive.replace(
            tzinfo=ZoneInfo(to_iana(str(value.get("timeZone") or "UTC")) or "UTC")
        ).astimezone(dt.UTC)

    def _batch(self, payload: dict[str, Any], headers: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
        reqs = payload.get("requests") or []
        if not reqs or len(reqs) > 20:
            return (
                400,
                {},
                {
                    "error": {
                        "code": "BadRequest",
                        "message": "The number of batch requests must be between 1 and 20.",
                    }
                },
            )
        responses = []
        for r in reqs:
            parts = urlsplit(str(r.get("url") or ""))
            inner_headers = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
            path = "/v1.0" + unquote(parts.path)
            with self._lock:
                self.recorded.append(
                    Recorded(str(r.get("method")), path, parse_qs(parts.query), inner_headers, inner=True)
                )
            status, hdrs, body = self._graph(
                str(r.get("method") or "GET").upper(),
                path,
                parse_qs(parts.query, keep_blank_values=True),
                inner_headers,
                r.get("body"),
                outer=False,
            )
            responses.append(
                {
                    "id": r.get("id"),
                    "status": status,
                    "headers": {"Content-Type": "application/json", **hdrs},
                    "body": body,
                }
            )
        responses.reverse()  # Graph does not promise response order
        return 200, {}, {"responses": responses}


class _Handler(BaseHTTPRequestHandler):
    standin: GraphStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.standin.handle(method, self.path, dict(self.headers.items()), body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


def seed_demo(standin: GraphStandin, mailboxes: Mapping[str, str], now: dt.datetime, days: int = 14) -> None:
    """Demo calendars: stand-ups (Teams), visits, a private appointment, a cancelled meeting,
    an all-day closure, on each working day of the next `days` days in each mailbox's zone."""
    for n, (address, tz_name) in enumerate(sorted(mailboxes.items())):
        if address.lower() not in standin.mailboxes:
            standin.add_mailbox(address, tz_name)
        tz = ZoneInfo(tz_name)
        today = now.astimezone(tz).date()
        workdays = [
            today + dt.timedelta(days=i) for i in range(days) if (today + dt.timedelta(days=i)).weekday() < 5
        ]
        site = "sched" in address or "site" in address

        def at(day: dt.date, hh: int, mm: int = 0, _tz: ZoneInfo = tz) -> dt.datetime:
            return dt.datetime.combine(day, dt.time(hh, mm), _tz)

        if not workdays:
            continue
        first = workdays[0]
        if site:
            for i, day in enumerate(workdays):
                if i % 2 == 0:
                    standin.add_event(address, "Screening visits", at(day, 9, 30), at(day, 12, 0))
                standin.add_event(
                    address,
                    "Site huddle",
                    at(day, 14, 0),
                    at(day, 14, 30),
                    join_url=f"https://teams.microsoft.com/l/meetup-join/demo-{n}-{i}",
                )
            if len(workdays) > 3:
                standin.add_all_day(address, "Site closed (staff training)", workdays[3])
        else:
            standin.add_series(
                address,
                "Coordinator stand-up",
                at(first, 9, 30),
                dt.timedelta(minutes=15),
                count=days,
                join_url="https://teams.microsoft.com/l/meetup-join/demo-standup",
            )
            for i, day in enumerate(workdays):
                if i % 3 == 0:
                    standin.add_event(
                        address,
                        "Sponsor check-in",
                        at(day, 11, 0),
                        at(day, 11, 30),
                        join_url=f"https://teams.microsoft.com/l/meetup-join/demo-sponsor-{i}",
                    )
                if i % 4 == 1:
                    standin.add_event(
                        address, "Dentist", at(day, 15, 0), at(day, 16, 0), sensitivity="private"
                    )
            standin.add_event(
                address, "Protocol training", at(first, 16, 0), at(first, 17, 0), is_cancelled=True
            )
            if len(workdays) > 5:
                standin.add_all_day(address, "Investigator meeting (travel)", workdays[5])
