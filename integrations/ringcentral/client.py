"""RingCentral REST client on requests.

Auth: the JWT bearer grant (`urn:ietf:params:oauth:grant-type:jwt-bearer`) at /restapi/oauth/token
with HTTP basic auth of the app's client id and secret. One client per process; the access token
is cached and fetched again (under a lock, by one thread) shortly before it expires or when an
API answers 401.

Rate limits: RingCentral answers 429 with `Retry-After` (seconds) and names the group in
`X-Rate-Limit-Group`. The client waits what it is told, up to `max_delay` per wait and
`max_retries` times, then raises RcRateLimited so a job can stop and resume at its next tick.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from integrations import metrics
from integrations.ringcentral.errors import (
    RcAuthError,
    RcNotFound,
    RcPermissionError,
    RcRateLimited,
    RcRequestError,
    RcSyncReset,
    RcUnavailable,
    explain_auth,
    permission_in,
)

log = logging.getLogger("prescreen.ringcentral")

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/restapi/oauth/token"
API = "/restapi/v1.0/account/~"
SMS_FILTER = "/restapi/v1.0/account/~/extension/{ext}/message-store/instant?type=SMS"
REFRESH_MARGIN_S = 120  # fetch a new token this long before the old one expires


def rc_instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


@dataclass(frozen=True)
class Extension:
    id: str
    number: str
    email: str | None
    status: str


@dataclass(frozen=True)
class RingOut:
    id: str
    status: str  # InProgress | Success | CannotReach | NoAnsweringMachine | Error …
    caller: str | None = None
    callee: str | None = None


@dataclass
class CallLogPage:
    records: list[dict[str, Any]]
    sync_token: str
    sync_type: str


@dataclass
class Stats:
    requests: int = 0
    token_requests: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, value: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + value)


class RcSettings(Protocol):
    ringcentral_server_url: str
    ringcentral_client_id: str | None
    ringcentral_client_secret: str | None
    ringcentral_jwt: str | None

    @property
    def ringcentral_configured(self) -> bool: ...


class RingCentralClient:
    def __init__(self, *, server_url: str, client_id: str, client_secret: str, jwt: str,
                 timeout: float = 15.0, max_retries: int = 3, max_delay: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None) -> None:
        self.server_url = server_url.rstrip("/")
        self._client = (client_id, client_secret)
        self._jwt = jwt
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_delay = max_delay
        self.sleep = sleep
        self.http = session or requests.Session()
        self.stats = Stats()
        self._token: str | None = None
        self._expires: float = 0.0
        self.scope: set[str] = set()  # the app's permissions, as the token endpoint lists them
        self._lock = threading.Lock()

    # ----- auth -----
    def token(self, *, force: bool = False) -> str:
        with self._lock:
            if not force and self._token and time.monotonic() < self._expires:
                return self._token
            try:
                resp = self.http.post(self.server_url + TOKEN_PATH,
                                      data={"grant_type": JWT_GRANT, "assertion": self._jwt},
                                      auth=self._client, timeout=self.timeout,
                                      headers={"Accept": "application/json"})
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise RcUnavailable(f"cannot reach {self.server_url} ({type(exc).__name__})") from None
            self.stats.add("token_requests")
            body = _json(resp)
            if resp.status_code == 429:
                self.stats.add("rate_limited")
                raise RcRateLimited("the token endpoint is rate limited; try again in a minute",
                                    _retry_after(resp), resp.headers.get("X-Rate-Limit-Group"))
            if resp.status_code != 200 or "access_token" not in body:
                errors = body.get("errors") or [{}]
                code = body.get("errorCode") or (errors[0] or {}).get("errorCode")
                raise RcAuthError(explain_auth(resp.status_code, body.get("error"), code,
                                               body.get("error_description")))
            self._token = str(body["access_token"])
            self.scope = set(str(body.get("scope") or "").split())
            lifetime = float(body.get("expires_in") or 3600)
            self._expires = time.monotonic() + max(lifetime - REFRESH_MARGIN_S, lifetime / 2)
            return self._token

    # ----- transport -----
    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, what: str = "request") -> Any:
        retried_auth = False
        attempt = 0
        while True:
            token = self.token()
            started = time.perf_counter()
            try:
                resp = self.http.request(method, self.server_url + path, params=params, json=json,
                                         timeout=self.timeout,
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Accept": "application/json"})
            except (requests.ConnectionError, requests.Timeout) as exc:
                metrics.ringcentral_call("network", time.perf_counter() - started)
                raise RcUnavailable(f"cannot reach {self.server_url} while reading the {what} "
                                    f"({type(exc).__name__})") from None
            self.stats.add("requests")
            status = resp.status_code
            metrics.ringcentral_call("throttled" if status in (429, 503)
                                     else "error" if status >= 400 else "ok",
                                     time.perf_counter() - started)
            if status == 401 and not retried_auth:
                retried_auth = True
                self.token(force=True)
                continue
            if status in (429, 503):
                wait = _retry_after(resp)
                group = resp.headers.get("X-Rate-Limit-Group")
                if status == 429:
                    self.stats.add("rate_limited")
                attempt += 1
                delay = wait if wait is not None else min(2.0 ** attempt, self.max_delay)
                if attempt > self.max_retries or delay > self.max_delay:
                    raise RcRateLimited(
                        f"rate limited by RingCentral ({group or 'unknown'} group) while reading "
                        f"the {what}; retry after {delay:g} s", delay, group)
                self.stats.add("waited_s", delay)
                self.sleep(delay)
                continue
            body = _json(resp)
            if status >= 400:
                raise _error(status, body, what)
            return body

    # ----- API -----
    def extensions(self) -> Iterator[Extension]:
        page = 1
        while True:
            body = self.request("GET", f"{API}/extension",
                                params={"page": page, "perPage": 1000, "type": "User"},
                                what="extension list")
            for rec in body.get("records") or []:
                contact = rec.get("contact") or {}
                yield Extension(str(rec["id"]), str(rec.get("extensionNumber") or ""),
                                (contact.get("email") or "").lower() or None,
                                str(rec.get("status") or ""))
            paging = body.get("paging") or {}
            if page >= int(paging.get("totalPages") or 1):
                return
            page += 1

    def extension(self, extension_id: str) -> Extension:
        rec = self.request("GET", f"{API}/extension/{extension_id}", what="extension")
        contact = rec.get("contact") or {}
        return Extension(str(rec["id"]), str(rec.get("extensionNumber") or ""),
                         (contact.get("email") or "").lower() or None, str(rec.get("status") or ""))

    def direct_number(self, extension_id: str) -> str | None:
        """The extension's direct number: RingOut rings it first (the coordinator's phone)."""
        body = self.request("GET", f"{API}/extension/{extension_id}/phone-number",
                            params={"usageType": "DirectNumber"}, what="extension's numbers")
        for rec in body.get("records") or []:
            if rec.get("phoneNumber"):
                return str(rec["phoneNumber"])
        return None

    def ring_out(self, extension_id: str, *, from_number: str, to_number: str,
                 caller_id: str | None = None) -> RingOut:
        payload: dict[str, Any] = {"from": {"phoneNumber": from_number},
                                   "to": {"phoneNumber": to_number}, "playPrompt": False}
        if caller_id:
            payload["callerId"] = {"phoneNumber": caller_id}
        body = self.request("POST", f"{API}/extension/{extension_id}/ring-out", json=payload,
                            what="RingOut")
        return _ringout(body)

    def ring_out_status(self, extension_id: str, ringout_id: str) -> RingOut:
        return _ringout(self.request("GET", f"{API}/extension/{extension_id}/ring-out/{ringout_id}",
                                     what="RingOut status"))

    def call_log_sync(self, extension_id: str, *, sync_token: str | None = None,
                      date_from: dt.datetime | None = None, record_count: int = 1000
                      ) -> CallLogPage:
        params: dict[str, Any] = {"statusGroup": "All"}
        if sync_token:
            params.update(syncType="ISync", syncToken=sync_token)
        else:
            params.update(syncType="FSync", recordCount=record_count)
            if date_from is not None:
                params["dateFrom"] = rc_instant(date_from)
        body = self.request("GET", f"{API}/extension/{extension_id}/call-log-sync", params=params,
                            what="call log")
        info = body.get("syncInfo") or {}
        return CallLogPage(list(body.get("records") or []), str(info.get("syncToken") or ""),
                           str(info.get("syncType") or params["syncType"]))

    def call_log(self, extension_id: str, *, date_from: dt.datetime) -> list[dict[str, Any]]:
        body = self.request("GET", f"{API}/extension/{extension_id}/call-log",
                            params={"dateFrom": rc_instant(date_from), "perPage": 100},
                            what="call log")
        return list(body.get("records") or [])

    def send_sms(self, extension_id: str, *, from_number: str, to_number: str, text: str) -> str:
        body = self.request("POST", f"{API}/extension/{extension_id}/sms", what="SMS send",
                            json={"from": {"phoneNumber": from_number},
                                  "to": [{"phoneNumber": to_number}], "text": text})
        return str(body.get("id") or "")

    def create_subscription(self, *, address: str, verification_token: str,
                            event_filters: list[str], expires_in: int = 7 * 24 * 3600
                            ) -> tuple[str, dt.datetime]:
        body = self.request("POST", "/restapi/v1.0/subscription", what="webhook subscription",
                            json={"eventFilters": event_filters, "expiresIn": expires_in,
                                  "deliveryMode": {"transportType": "WebHook", "address": address,
                                                   "verificationToken": verification_token}})
        return str(body["id"]), parse_instant(str(body["expirationTime"]))

    def renew_subscription(self, subscription_id: str) -> dt.datetime:
        body = self.request("POST", f"/restapi/v1.0/subscription/{subscription_id}/renew",
                            what="webhook subscription")
        return parse_instant(str(body["expirationTime"]))

    def close(self) -> None:
        self.http.close()


def _ringout(body: dict[str, Any]) -> RingOut:
    status = body.get("status") or {}
    return RingOut(str(body.get("id") or ""), str(status.get("callStatus") or "InProgress"),
                   status.get("callerStatus"), status.get("calleeStatus"))


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _error(status: int, body: dict[str, Any], what: str) -> RcRequestError:
    errors = body.get("errors") or [{}]
    code = body.get("errorCode") or (errors[0] or {}).get("errorCode")
    message = str(body.get("message") or (errors[0] or {}).get("message") or "")
    if status == 403:
        perm = permission_in(message)
        plain = (f"the app lacks the {perm} permission: add it in the RingCentral developer console "
                 "(app settings > permissions) and create a new JWT"
                 if perm else "access denied: the JWT's user may not do this (an admin user needed)")
        return RcPermissionError(f"{what}: {plain}", status, code, perm)
    if status == 404:
        return RcNotFound(f"{what}: not found in this RingCentral account", status, code)
    if status == 400 and "synctoken" in message.lower().replace(" ", ""):
        return RcSyncReset(f"{what}: the sync token is no longer valid; a full sync follows",
                           status, code)
    return RcRequestError(f"{what}: HTTP {status} {code or ''}".strip(), status, code)


def client_from_settings(settings: RcSettings, **options: Any) -> RingCentralClient | None:
    """A client when RingCentral is configured, else None. Makes no network call."""
    if not settings.ringcentral_configured:
        return None
    return RingCentralClient(server_url=settings.ringcentral_server_url,
                             client_id=settings.ringcentral_client_id or "",
                             client_secret=settings.ringcentral_client_secret or "",
                             jwt=settings.ringcentral_jwt or "", **options)
