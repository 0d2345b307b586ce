"""Sign in with Slack for the stand-in: OpenID Connect as Slack documents it.

Discovery at ``/.well-known/openid-configuration`` (the issuer is the stand-in's base URL), the
authorize page ``/openid/connect/authorize`` (straight back with a code when an acting user is
set, else a page of "Continue as <name>" buttons), the token method ``openid.connect.token``
(``{"ok": true, "access_token", "token_type", "id_token"}``, or ``{"ok": false, "error"}`` with
Slack's error codes), ``openid.connect.userInfo`` and the keys at ``/openid/connect/keys``.
ID tokens are RS256 JWTs with Slack's claims (``https://slack.com/user_id``, ``…/team_id``).
Tests forge the next one with :meth:`OidcProvider.tamper_next_id_token`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_TTL_S = 600
ID_TOKEN_TTL_S = 300
TAMPERINGS = ("signature", "audience", "nonce", "issuer", "team", "expired")
SCOPES = ("openid", "profile", "email")
AUTHORIZE = "/openid/connect/authorize"
KEYS = "/openid/connect/keys"
DISCOVERY = "/.well-known/openid-configuration"
TOKEN_METHOD, USERINFO_METHOD = "openid.connect.token", "openid.connect.userInfo"

# (status, content type, body, extra headers)
Answer = tuple[int, str, bytes, dict[str, str]]


@dataclass
class _Client:
    secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class _Code:
    client_id: str
    user_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    challenge_method: str | None
    issued_at: float
    used: bool = False


def _json(status: int, payload: dict[str, Any]) -> Answer:
    return status, "application/json; charset=utf-8", json.dumps(payload).encode(), {}


def _page(status: int, body: str) -> Answer:
    doc = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
           "content='width=device-width, initial-scale=1'><title>Sign in with Slack (stand-in)"
           f"</title></head><body>{body}</body></html>")
    return status, "text/html; charset=utf-8", doc.encode(), {}


class OidcProvider:
    """The stand-in workspace's OpenID Connect provider (one per SlackStandin)."""

    def __init__(self, base_url: Callable[[], str], team_id: Callable[[], str],
                 users: Callable[[], dict[str, dict[str, Any]]], team_domain: str) -> None:
        self._base_url = base_url
        self._team_id = team_id
        self._users = users
        self._team_domain = team_domain
        self._lock = threading.Lock()
        self._key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"},
                                        auto_kid=True)
        self._clients: dict[str, _Client] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, str] = {}  # access token -> user id
        self._acting: str | None = None
        self._tamper: str | None = None
        self.issued: list[dict[str, Any]] = []  # claims of every ID token handed out

    # ------------------------------------------------------------------ test hooks

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        with self._lock:
            self._clients[client_id] = _Client(client_secret, tuple(redirect_uris))

    def sign_in_as(self, user_id: str | None) -> None:
        """The person signed in to Slack in this browser; None shows the account picker."""
        with self._lock:
            self._acting = user_id

    def tamper_next_id_token(self, how: str) -> None:
        if how not in TAMPERINGS:
            raise ValueError(f"tampering must be one of {', '.join(TAMPERINGS)}")
        with self._lock:
            self._tamper = how

    # ------------------------------------------------------------------ HTTP

    def handles(self, path: str) -> bool:
        return path in (DISCOVERY, AUTHORIZE, KEYS, "/api/" + TOKEN_METHOD, "/api/" + USERINFO_METHOD)

    def handle(self, method: str, path: str, query: str, body: bytes, headers: dict[str, str]
               ) -> Answer:
        args = dict(parse_qsl(query, keep_blank_values=True))
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if body else {}
        if path == DISCOVERY:
            return _json(200, self.discovery())
        if path == KEYS:
            return _json(200, {"keys": [self._key.as_dict(private=False)]})
        if path == AUTHORIZE:
            return self._authorize(method, {**args, **form})
        if path == "/api/" + TOKEN_METHOD:
            return _json(200, self._token({**args, **form}, headers))
        return _json(200, self._userinfo(headers))

    def discovery(self) -> dict[str, Any]:
        base = self._base_url()
        return {
            "issuer": base,
            "authorization_endpoint": base + AUTHORIZE,
            "token_endpoint": base + "/api/" + TOKEN_METHOD,
            "userinfo_endpoint": base + "/api/" + USERINFO_METHOD,
            "jwks_uri": base + KEYS,
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["form_post"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "auth_time", "iss"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": True,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }

    def _authorize(self, method: str, args: dict[str, str]) -> Answer:
        client = self._clients.get(args.get("client_id", ""))
        redirect_uri = args.get("redirect_uri", "")
        if client is None:
            return _page(400, "<h1>Invalid client_id parameter</h1>")
        if redirect_uri not in client.redirect_uris:
            return _page(400, "<h1>redirect_uri did not match any configured URIs</h1>")
        scopes = set(args.get("scope", "").split())
        if args.get("response_type") != "code" or "openid" not in scopes or not scopes <= set(SCOPES):
            return self._back(redirect_uri, {"error": "invalid_scope", "state": args.get("state", "")})
        user_id = args.get("user_id") if method == "POST" else self._acting
        users = self._users()
        if user_id is None:
            return self._picker(args, users)
        if user_id not in users or users[user_id].get("deleted"):
            return _page(400, "<h1>No such user in this workspace</h1>")
        code = secrets.token_hex(24)
        with self._lock:
            self._codes[code] = _Code(args["client_id"], user_id, redirect_uri, args.get("nonce"),
                                      args.get("code_challenge"), args.get("code_challenge_method"),
                                      time.time())
        return self._back(redirect_uri, {"code": code, "state": args.get("state", "")})

    @staticmethod
    def _back(redirect_uri: str, params: dict[str, str]) -> Answer:
        sep = "&" if urlsplit(redirect_uri).query else "?"
        return 302, "text/plain; charset=utf-8", b"", {"Location": redirect_uri + sep + urlencode(params)}

    def _picker(self, args: dict[str, str], users: dict[str, dict[str, Any]]) -> Answer:
        hidden = "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
                         for k, v in args.items() if k != "user_id")
        buttons = "".join(
            f"<li><form method='post' action='{AUTHORIZE}'>{hidden}"
            f"<button type='submit' name='user_id' value='{html.escape(uid)}'>Continue as "
            f"{html.escape(u.get('name') or uid)}</button></form></li>"
            for uid, u in sorted(users.items(), key=lambda kv: kv[1].get("name") or kv[0])
            if not u.get("deleted") and not u.get("is_bot"))
        return _page(200, f"<h1>Sign in to {html.escape(self._team_domain)} (Slack stand-in)</h1>"
                          f"<ul>{buttons}</ul>")

    def _client_auth(self, args: dict[str, str], headers: dict[str, str]) -> tuple[str, str]:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                return cid, secret
            except (ValueError, UnicodeDecodeError):
                return "", ""
        return args.get("client_id", ""), args.get("client_secret", "")

    def _token(self, args: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        client_id, secret = self._client_auth(args, headers)
        client = self._clients.get(client_id)
        if client is None:
            return {"ok": False, "error": "invalid_client_id"}
        if not hmac.compare_digest(client.secret.encode(), secret.encode()):
            return {"ok": False, "error": "bad_client_secret"}
        if args.get("grant_type", "authorization_code") != "authorization_code":
            return {"ok": False, "error": "invalid_grant_type"}
        with self._lock:
            code = self._codes.get(args.get("code", ""))
            if code is None or code.client_id != client_id or time.time() - code.issued_at > CODE_TTL_S:
                return {"ok": False, "error": "invalid_code"}
            if code.used:
                return {"ok": False, "error": "code_already_used"}
            code.used = True
            tamper, self._tamper = self._tamper, None
        if args.get("redirect_uri", "") != code.redirect_uri:
            return {"ok": False, "error": "bad_redirect_uri"}
        if code.challenge is not None:
            verifier = args.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
            if code.challenge_method != "S256" or not hmac.compare_digest(
                    digest.decode(), code.challenge):
                return {"ok": False, "error": "invalid_code_verifier"}
        access = "xoxp-" + secrets.token_hex(20)
        with self._lock:
            self._access[access] = code.user_id
        return {"ok": True, "access_token": access, "token_type": "Bearer",
                "id_token": self._id_token(client_id, code, tamper)}

    def claims_for(self, user_id: str) -> dict[str, Any]:
        user = self._users().get(user_id) or {}
        profile = user.get("profile") or {}
        team = self._team_id()
        claims: dict[str, Any] = {
            "sub": user_id, "https://slack.com/user_id": user_id, "https://slack.com/team_id": team,
            "name": user.get("real_name") or user.get("name") or user_id,
            "given_name": user.get("name") or user_id, "locale": "en-US",
            "https://slack.com/team_name": "Stand-in Team",
            "https://slack.com/team_domain": self._team_domain,
        }
        if profile.get("email"):
            claims.update(email=profile["email"], email_verified=True)
        return claims

    def _id_token(self, client_id: str, code: _Code, tamper: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self._base_url(), "aud": client_id, "iat": now,
                                  "exp": now + ID_TOKEN_TTL_S, "auth_time": now,
                                  **self.claims_for(code.user_id)}
        if code.nonce is not None:
            claims["nonce"] = code.nonce
        key = self._key
        if tamper == "signature":  # same key id, another key: only the signature gives it away
            key = RSAKey.generate_key(2048, parameters={"kid": self._key.kid, "use": "sig",
                                                        "alg": "RS256"})
        elif tamper == "audience":
            claims["aud"] = "some-other-app"
        elif tamper == "nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif tamper == "issuer":
            claims["iss"] = "https://issuer.invalid"
        elif tamper == "team":
            claims["https://slack.com/team_id"] = "T0OTHERTEAM"
        elif tamper == "expired":
            claims.update(iat=now - 7200, auth_time=now - 7200, exp=now - 3600)
        self.issued.append(dict(claims))
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": self._key.kid}, claims, key)

    def _userinfo(self, headers: dict[str, str]) -> dict[str, Any]:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            return {"ok": False, "error": "not_authed"}
        user_id = self._access.get(token)
        if user_id is None:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, **self.claims_for(user_id)}
