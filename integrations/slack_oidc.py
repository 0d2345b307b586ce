"""Sign in with Slack, the transport: OpenID Connect discovery, the authorize URL (state, nonce,
PKCE S256), the code exchange, and the ID token's verification against the issuer's keys.

Authlib builds the authorize URL and exchanges the code; joserfc verifies the ID token (RS256
signature, iss, aud, exp, iat, nonce). Nothing here decides who may come in (bot/signin.py does).
Errors are :class:`OidcError` whose ``reason`` is a fixed phrase: it is logged, so it never
carries a token, a code or anything the issuer sent."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

DISCOVERY_TTL_S = 60 * 60  # Slack's discovery document and keys change rarely; an hour bounds a rotation
LEEWAY_S = 60  # clock skew allowed on exp and iat
TIMEOUT_S = 10
SCOPES = "openid email profile"
USER_CLAIM = "https://slack.com/user_id"
TEAM_CLAIM = "https://slack.com/team_id"


class OidcError(Exception):
    """Sign-in failed on the issuer's side or the token did not verify. ``reason``: fixed words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


_lock = threading.Lock()
_discovery: dict[str, tuple[float, Discovery]] = {}
_keys: dict[str, tuple[float, KeySet]] = {}


def forget_cache() -> None:
    """Drop the cached discovery documents and keys (a test's stand-in restarts on a new port)."""
    with _lock:
        _discovery.clear()
        _keys.clear()


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        resp = requests.get(url, timeout=TIMEOUT_S, headers={"accept": "application/json"})
    except requests.RequestException:
        raise OidcError(f"{what} unreachable") from None
    if resp.status_code != 200:
        raise OidcError(f"{what} answered HTTP {resp.status_code}")
    try:
        data = resp.json()
    except ValueError:
        raise OidcError(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise OidcError(f"{what} is not a JSON object")
    return data


def discover(issuer: str) -> Discovery:
    """``{issuer}/.well-known/openid-configuration``, cached per process for an hour."""
    now = time.monotonic()
    with _lock:
        hit = _discovery.get(issuer)
    if hit is not None and now - hit[0] < DISCOVERY_TTL_S:
        return hit[1]
    doc = _get_json(issuer + "/.well-known/openid-configuration", "discovery document")
    fields = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if not all(isinstance(doc.get(f), str) and doc[f] for f in fields):
        raise OidcError("discovery document incomplete")
    if doc["issuer"].rstrip("/") != issuer:
        raise OidcError("discovery document names another issuer")
    if "RS256" not in (doc.get("id_token_signing_alg_values_supported") or ["RS256"]):
        raise OidcError("issuer does not sign ID tokens with RS256")
    found = Discovery(issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
                      token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"])
    with _lock:
        _discovery[issuer] = (now, found)
    return found


def _key_set(disc: Discovery, *, refresh: bool = False) -> KeySet:
    now = time.monotonic()
    with _lock:
        hit = _keys.get(disc.jwks_uri)
    if hit is not None and not refresh and now - hit[0] < DISCOVERY_TTL_S:
        return hit[1]
    data = _get_json(disc.jwks_uri, "key set")
    try:
        keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise OidcError("key set unreadable") from None
    with _lock:
        _keys[disc.jwks_uri] = (now, keys)
    return keys


def authorize_url(disc: Discovery, *, client_id: str, redirect_uri: str, state: str, nonce: str,
                  code_verifier: str) -> str:
    client = OAuth2Session(client_id=client_id, scope=SCOPES, redirect_uri=redirect_uri,
                           code_challenge_method="S256")
    url, _state = client.create_authorization_url(disc.authorization_endpoint, state=state,
                                                  nonce=nonce, code_verifier=code_verifier)
    return str(url)


def exchange_code(disc: Discovery, *, client_id: str, client_secret: str, redirect_uri: str,
                  code: str, code_verifier: str) -> str:
    """The ID token for ``code``. Slack answers ``{"ok": true, "access_token", "token_type",
    "id_token"}``, or ``{"ok": false, "error": …}``."""
    client = OAuth2Session(client_id=client_id, client_secret=client_secret,
                           token_endpoint_auth_method="client_secret_post",
                           redirect_uri=redirect_uri, default_timeout=TIMEOUT_S)
    try:
        token = client.fetch_token(disc.token_endpoint, grant_type="authorization_code", code=code,
                                   code_verifier=code_verifier)
    except OAuthError:
        raise OidcError("token endpoint refused the code") from None
    except requests.RequestException:
        raise OidcError("token endpoint unreachable") from None
    except ValueError:
        raise OidcError("token endpoint answered something unreadable") from None
    if token.get("ok") is False:
        raise OidcError("token endpoint refused the code")
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise OidcError("token endpoint sent no ID token")
    return id_token


def verify_id_token(disc: Discovery, id_token: str, *, client_id: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims once its RS256 signature (the issuer's published keys), ``iss``,
    ``aud``, ``exp``, ``iat`` (wall time, a minute's leeway) and ``nonce`` all check out."""
    token = _decode(disc, id_token)
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_S,
        iss={"essential": True, "value": disc.issuer},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
    )
    try:
        registry.validate(token.claims)
    except JoseError as exc:
        raise OidcError(f"ID token claim refused ({type(exc).__name__})") from None
    iat = token.claims.get("iat")
    if not isinstance(iat, int | float) or iat > time.time() + LEEWAY_S:
        raise OidcError("ID token issued in the future")
    return dict(token.claims)


def _decode(disc: Discovery, id_token: str) -> jwt.Token:
    for refresh in (False, True):  # a failure with cached keys: the issuer may have rotated them
        keys = _key_set(disc, refresh=refresh)
        try:
            return jwt.decode(id_token, keys, algorithms=["RS256"])
        except JoseError as exc:
            if refresh:
                raise OidcError(f"ID token refused ({type(exc).__name__})") from None
        except (ValueError, TypeError):
            raise OidcError("ID token unreadable") from None
    raise OidcError("ID token refused")  # pragma: no cover - the loop returns or raises
