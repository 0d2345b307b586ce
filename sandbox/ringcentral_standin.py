"""A RingCentral stand-in built from the documented request and response shapes: the JWT bearer
token endpoint, the account's extension list, an extension's direct number, RingOut with its
status, the call log and its sync (FSync, then ISync with the sync token), SMS send, webhook
subscriptions (the Validation-Token handshake, then notifications carrying the
Verification-Token) and rate-limit 429s with Retry-After. In memory, plain HTTP on 127.0.0.1.

Used by the tests and by the sandbox; a RingOut is "answered" or "missed" as told
(`next_outcome`), and lands in the call log like a real one."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ALL_PERMISSIONS = ("ReadAccounts", "ReadCallLog", "RingOut", "SMS", "ReadMessages",
                   "WebhookSubscriptions")
# what a RingOut turns into in the call log: (result, duration seconds)
OUTCOMES = {"answered": ("Call connected", 360), "missed": ("No Answer", 0),
            "busy": ("Busy", 0), "voicemail": ("Voicemail", 40)}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class FakeExtension:
    id: str
    number: str
    email: str
    direct_number: str
    status: str = "Enabled"
    calls: list[dict[str, Any]] = field(default_factory=list)  # in the order they happened


@dataclass
class Subscription:
    id: str
    address: str
    verification_token: str
    event_filters: list[str]
    expires_at: dt.datetime


class RingCentralStandin:
    def __init__(self, *, client_id: str = "rc-test-client-id",
                 client_secret: str = "rc-test-client-secret",
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.jwts: dict[str, str] = {}  # JWT -> "ok" | "expired"
        self.permissions = set(ALL_PERMISSIONS)
        self.token_lifetime = 3600
        self.tokens: set[str] = set()
        self.extensions: dict[str, FakeExtension] = {}
        self.ringouts: dict[str, dict[str, Any]] = {}
        self.sms: list[dict[str, Any]] = []
        self.subscriptions: dict[str, Subscription] = {}
        self.next_outcome = "answered"
        self.outcome_cycle: list[str] = []  # when set, each RingOut takes the next of these
        self.on_ringout: Callable[[dict[str, Any]], None] | None = None  # after the call "ends"
        self.rate_limits: list[tuple[float, str]] = []  # queued 429s: (retry_after, group)
        self.calls: Counter[str] = Counter()
        self.sync_types: list[tuple[str, str]] = []  # (extension id, syncType) of each sync
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # ----- lifecycle -----
    def start(self, host: str = "127.0.0.1", port: int = 0) -> RingCentralStandin:
        standin = self

        class Handler(_Handler):
            pass

        Handler.standin = standin
        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://{host}:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, name="rc-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ----- data -----
    def issue_jwt(self, state: str = "ok") -> str:
        jwt = "eyJ" + secrets.token_urlsafe(24)
        self.jwts[jwt] = state
        return jwt

    def add_extension(self, email: str, direct_number: str, number: str | None = None
                      ) -> FakeExtension:
        with self._lock:
            ext_id = str(62000000 + len(self.extensions) + 1)
            ext = FakeExtension(ext_id, number or str(100 + len(self.extensions) + 1), email.lower(),
                                direct_number)
            self.extensions[ext_id] = ext
            return ext

    def add_call(self, ext_id: str, to_number: str, result: str = "No Answer", duration: int = 0,
                 start: dt.datetime | None = None, direction: str = "Outbound") -> dict[str, Any]:
        """A record in the extension's call log, as if a call had just happened."""
        with self._lock:
            ext = self.extensions[ext_id]
            seq = next(self._seq)
            rec = {"id": f"rec{seq:08d}", "uri": f"{self.url}/restapi/v1.0/account/1/call-log/rec{seq}",
                   "sessionId": str(900000000 + seq), "startTime": _iso(start or self.clock()),
                   "duration": duration, "type": "Voice", "direction": direction,
                   "action": "RingOut Web", "result": result,
                   "to": {"phoneNumber": to_number},
                   "from": {"phoneNumber": ext.direct_number, "extensionId": ext.id},
                   "_seq": seq}
            ext.calls.append(rec)
            return rec

    def rate_limit(self, times: int, retry_after: float = 1, group: str = "Heavy") -> None:
        """The next `times` API requests answer 429 with this Retry-After."""
        with self._lock:
            self.rate_limits.extend([(retry_after, group)] * times)

    # ----- webhooks -----
    def receive_text(self, from_number: str, to_number: str, text: str) -> dict[str, Any]:
        """An inbound SMS: a notification for every subscription listening. Returns it, so a test
        can deliver it again (RingCentral may)."""
        seq = next(self._seq)
        body = {"uuid": secrets.token_hex(8), "event": "/restapi/v1.0/account/~/extension/~/"
                "message-store/instant?type=SMS", "timestamp": _iso(self.clock()),
                "subscriptionId": "", "ownerId": "",
                "body": {"id": str(7000000 + seq), "to": [{"phoneNumber": to_number}],
                         "from": {"phoneNumber": from_number}, "type": "SMS",
                         "creationTime": _iso(self.clock()), "subject": text,
                         "direction": "Inbound", "messageStatus": "Received"}}
        self.deliver(body)
        return body

    def deliver(self, notification: dict[str, Any]) -> list[int]:
        statuses = []
        for sub in list(self.subscriptions.values()):
            body = {**notification, "subscriptionId": sub.id}
            resp = requests.post(sub.address, json=body, timeout=10,
                                 headers={"Verification-Token": sub.verification_token,
                                          "User-Agent": "RingCentral-Webhook/8.3"})
            statuses.append(resp.status_code)
        return statuses

    # ----- HTTP -----
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        headers = {k.lower(): v for k, v in headers.items()}
        self.calls[route.split("/")[-1] if not route.rsplit("/", 1)[-1].isdigit() else "item"] += 1
        if route == "/restapi/oauth/token":
            return self._token(headers, body)
        with self._lock:
            if self.rate_limits:
                retry_after, group = self.rate_limits.pop(0)
                return 429, {"Retry-After": f"{retry_after:g}", "X-Rate-Limit-Group": group}, \
                    {"errorCode": "CMN-301", "message": "Request rate exceeded"}
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, {}, {"errorCode": "TokenInvalid", "message": "Invalid token"}
        data = json.loads(body) if body else {}
        segs = route.split("/")[3:]  # after /restapi/v1.0
        try:
            return self._api(method, segs, query, data)
        except KeyError:
            return 404, {}, {"errorCode": "CMN-102", "message": "Resource for parameter "
                             "[extensionId] is not found"}

    def _need(self, permission: str) -> tuple[int, dict[str, str], Any] | None:
        if permission in self.permissions:
            return None
        return 403, {}, {"errorCode": "CMN-408", "message": "In order to call this API endpoint, "
                         f"application needs to have [{permission}] permission"}

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        basic = headers.get("authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if basic != f"Basic {expected}":
            return 401, {}, {"error": "invalid_client", "errors": [
                {"errorCode": "OAU-153", "message": "Invalid client: " + "app"}],
                "error_description": "Invalid client"}
        if form.get("grant_type") != JWT_GRANT:
            return 400, {}, {"error": "unsupported_grant_type",
                             "error_description": "Unsupported grant type"}
        state = self.jwts.get(form.get("assertion", ""))
        if state is None:
            return 400, {}, {"error": "invalid_grant", "errors": [
                {"errorCode": "OAU-140", "message": "Invalid resource owner credentials"}],
                "error_description": "Invalid resource owner credentials"}
        if state == "expired":
            return 400, {}, {"error": "invalid_grant", "errors": [
                {"errorCode": "OAU-213", "message": "Token is expired"}],
                "error_description": "Token is expired"}
        token = "rc-at-" + secrets.token_urlsafe(16)
        self.tokens.add(token)
        return 200, {}, {"access_token": token, "token_type": "bearer",
                         "expires_in": self.token_lifetime, "refresh_token": "rc-rt-" + token[6:],
                         "refresh_token_expires_in": 604800, "scope": " ".join(self.permissions),
                         "owner_id": "1", "endpoint_id": "e1"}

    def _api(self, method: str, segs: list[str], query: dict[str, str], data: dict[str, Any]
             ) -> tuple[int, dict[str, str], Any]:
        if segs[:1] == ["subscription"]:
            return self._subscription(method, segs[1:], data)
        if segs[:2] != ["account", "~"] or len(segs) < 3 or segs[2] != "extension":
            return 404, {}, {"errorCode": "CMN-102", "message": "Resource not found"}
        rest = segs[3:]
        if not rest:
            if err := self._need("ReadAccounts"):
                return err
            return 200, {}, self._extension_list(query)
        # "~" is the JWT's own user (here: the first extension, the account's admin)
        ext = next(iter(self.extensions.values())) if rest[0] == "~" else self.extensions[rest[0]]
        what = rest[1] if len(rest) > 1 else ""
        if what == "":
            return 200, {}, {"id": int(ext.id), "extensionNumber": ext.number,
                             "contact": {"email": ext.email}, "status": ext.status, "type": "User"}
        if what == "phone-number":
            return 200, {}, {"records": [{"id": 1, "phoneNumber": ext.direct_number,
                                          "usageType": "DirectNumber",
                                          "features": ["CallerId", "SmsSender"]}],
                             "paging": {"page": 1, "totalPages": 1}}
        if what == "ring-out":
            if err := self._need("RingOut"):
                return err
            return self._ringout(method, ext, rest[2:], data)
        if what in ("call-log", "call-log-sync"):
            if err := self._need("ReadCallLog"):
                return err
            return self._call_log(ext, what, query)
        if what == "sms" and method == "POST":
            if err := self._need("SMS"):
                return err
            msg_id = str(8000000 + next(self._seq))
            self.sms.append({"id": msg_id, "extension": ext.id, "from": data["from"]["phoneNumber"],
                             "to": data["to"][0]["phoneNumber"], "text": data["text"]})
            return 200, {}, {"id": int(msg_id), "type": "SMS", "direction": "Outbound",
                             "messageStatus": "Queued", "to": data["to"], "from": data["from"]}
        return 404, {}, {"errorCode": "CMN-102", "message": "Resource not found"}

    def _extension_list(self, query: dict[str, str]) -> dict[str, Any]:
        per = int(query.get("perPage") or 100)
        page = int(query.get("page") or 1)
        all_ = list(self.extensions.values())
        chunk = all_[(page - 1) * per: page * per]
        return {"records": [{"id": int(e.id), "extensionNumber": e.number, "type": "User",
                             "status": e.status, "contact": {"email": e.email}} for e in chunk],
                "paging": {"page": page, "perPage": per,
                           "totalPages": max(1, -(-len(all_) // per)), "totalElements": len(all_)}}

    def _ringout(self, method: str, ext: FakeExtension, rest: list[str], data: dict[str, Any]
                 ) -> tuple[int, dict[str, str], Any]:
        if method == "GET":
            ro = self.ringouts[rest[0]]
            return 200, {}, ro["resource"]
        to = data["to"]["phoneNumber"]
        if self.outcome_cycle:
            self.next_outcome = self.outcome_cycle[len(self.ringouts) % len(self.outcome_cycle)]
        result, duration = OUTCOMES[self.next_outcome]
        ro_id = f"ro{next(self._seq)}"
        status = "Success" if self.next_outcome == "answered" else "NoAnsweringMachine"
        resource = {"id": ro_id, "uri": f"{self.url}/restapi/v1.0/account/~/extension/{ext.id}/"
                    f"ring-out/{ro_id}", "status": {"callStatus": status, "callerStatus": "Success",
                                                    "calleeStatus": status}}
        self.ringouts[ro_id] = {"resource": resource, "to": to, "from": data["from"]["phoneNumber"],
                                "callerId": (data.get("callerId") or {}).get("phoneNumber")}
        record = self.add_call(ext.id, to, result, duration)
        if self.on_ringout is not None:
            self.on_ringout(record)
        return 200, {}, {**resource, "status": {"callStatus": "InProgress",
                                                "callerStatus": "InProgress",
                                                "calleeStatus": "InProgress"}}

    def _call_log(self, ext: FakeExtension, what: str, query: dict[str, str]
                  ) -> tuple[int, dict[str, str], Any]:
        def public(r: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in r.items() if not k.startswith("_")}

        if what == "call-log":
            since = query.get("dateFrom", "")
            recs = [public(r) for r in reversed(ext.calls) if r["startTime"] >= since]
            return 200, {}, {"records": recs[:int(query.get("perPage") or 100)],
                             "paging": {"page": 1}}
        last = ext.calls[-1]["_seq"] if ext.calls else 0
        self.sync_types.append((ext.id, query.get("syncType", "FSync")))
        if query.get("syncType") == "ISync":
            token = query.get("syncToken", "")
            try:
                ext_id, after = token.split(".", 1)
                after_seq = int(after)
            except ValueError:
                ext_id, after_seq = "", -1
            if ext_id != ext.id or after_seq < 0:
                return 400, {}, {"errorCode": "CLG-104",
                                 "message": "Parameter [syncToken] value is invalid"}
            new = [r for r in ext.calls if r["_seq"] > after_seq][:250]
            last = new[-1]["_seq"] if new else after_seq
            recs = [public(r) for r in reversed(new)]
        else:
            since = query.get("dateFrom", "")
            count = int(query.get("recordCount") or 250)
            recs = [public(r) for r in reversed(ext.calls) if r["startTime"] >= since][:count]
        return 200, {}, {"uri": f"{self.url}/restapi/v1.0/account/~/extension/{ext.id}/"
                         "call-log-sync", "records": recs,
                         "syncInfo": {"syncType": query.get("syncType", "FSync"),
                                      "syncToken": f"{ext.id}.{last}",
                                      "syncTime": _iso(self.clock())}}

    def _subscription(self, method: str, rest: list[str], data: dict[str, Any]
                      ) -> tuple[int, dict[str, str], Any]:
        if not rest and method == "POST":
            mode = data.get("deliveryMode") or {}
            address = mode.get("address", "")
            check = secrets.token_urlsafe(12)
            try:  # the handshake: the webhook must echo the Validation-Token header
                resp = requests.post(address, headers={"Validation-Token": check}, timeout=5)
                ok = resp.status_code == 200 and resp.headers.get("Validation-Token") == check
            except requests.RequestException:
                ok = False
            if not ok:
                return 400, {}, {"errorCode": "SUB-520", "message": "Validation Token is not returned"}
            sub_id = secrets.token_hex(8)
            expires = self.clock() + dt.timedelta(seconds=int(data.get("expiresIn") or 604800))
            self.subscriptions[sub_id] = Subscription(sub_id, address,
                                                      mode.get("verificationToken", ""),
                                                      list(data.get("eventFilters") or []), expires)
            return 200, {}, self._sub_body(self.subscriptions[sub_id])
        sub = self.subscriptions[rest[0]]
        if rest[1:] == ["renew"]:
            sub.expires_at = self.clock() + dt.timedelta(days=7)
        return 200, {}, self._sub_body(sub)

    def _sub_body(self, sub: Subscription) -> dict[str, Any]:
        return {"id": sub.id, "status": "Active", "eventFilters": sub.event_filters,
                "expirationTime": _iso(sub.expires_at),
                "expiresIn": int((sub.expires_at - self.clock()).total_seconds()),
                "deliveryMode": {"transportType": "WebHook", "address": sub.address}}


class _Handler(BaseHTTPRequestHandler):
    standin: RingCentralStandin
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body in separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.standin.handle(method, self.path,
                                                       dict(self.headers.items()), body)
        raw = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")
