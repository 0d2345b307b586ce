"""App-only authentication for Microsoft Graph (client credentials through msal).

One `MsalCredential` per process: msal's in-memory token cache returns the same token until it
is close to expiry, so callers ask for a token before every request without reaching the
identity provider each time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import requests

from integrations.graph.errors import (
    GraphAuthError,
    GraphConfigError,
    GraphUnavailable,
    aadsts_codes,
    explain_aadsts,
)
from integrations.graph.http import PinnedSession

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class TokenCredential(Protocol):
    def token(self) -> str: ...


class MsalCredential:
    """Client credentials (secret or certificate) via msal.ConfidentialClientApplication.

    The msal application is built on first use (its constructor fetches the OIDC discovery
    document) and reused for the life of the process.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str | None = None,
        cert_path: str | None = None,
        cert_thumbprint: str | None = None,
        authority_host: str = "https://login.microsoftonline.com",
        scope: str = GRAPH_SCOPE,
        verify: bool | str = True,
        timeout: float = 15.0,
        http_client: requests.Session | None = None,
    ) -> None:
        if not tenant_id or not client_id:
            raise GraphConfigError("MS_TENANT_ID and MS_CLIENT_ID are required for Microsoft Graph")
        if not (client_secret or cert_path):
            raise GraphConfigError("set MS_CLIENT_SECRET or MS_CLIENT_CERT_PATH for Microsoft Graph")
        if not authority_host.startswith("https://"):
            raise GraphConfigError("MS_AUTHORITY_HOST must be an https:// URL")
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id.strip('/')}"
        self.client_id = client_id
        self.scope = scope
        self._credential = (
            client_secret if client_secret else _certificate_credential(cert_path or "", cert_thumbprint)
        )
        self._http = http_client or PinnedSession(verify=verify, timeout=timeout)
        self._app: Any = None
        self._lock = threading.Lock()
        self.token_requests = 0  # tokens obtained from the identity provider (not from cache)

    def _application(self) -> Any:
        import msal  # loaded when Microsoft Graph is first used, not at every start-up

        with self._lock:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self._credential,
                        authority=self.authority,
                        http_client=self._http,
                        instance_discovery=False,
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise GraphUnavailable(
                        f"cannot reach the identity provider at {self.authority} ({type(exc).__name__})"
                    ) from None
                except ValueError as exc:
                    codes = aadsts_codes(str(exc), str(exc.__context__ or ""))
                    raise GraphAuthError(
                        explain_aadsts(
                            codes,
                            "the authority rejected the tenant: check MS_TENANT_ID and MS_AUTHORITY_HOST",
                        ),
                        codes,
                    ) from None
            return self._app

    def token(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GraphUnavailable(f"cannot reach the identity provider ({type(exc).__name__})") from None
        if "access_token" in result:
            if result.get("token_source") == "identity_provider":
                self.token_requests += 1
            return str(result["access_token"])
        codes = aadsts_codes(result.get("error_codes") or [], result.get("error_description"))
        error = str(result.get("error") or "error")
        raise GraphAuthError(explain_aadsts(codes, f"token request failed ({error})"), codes, error)


class StaticTokenCredential:
    """Sandbox only: a fixed bearer token for the local Graph stand-in. Never use with a tenant."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.token_requests = 0

    def token(self) -> str:
        return self._token


def _certificate_credential(path: str, thumbprint: str | None) -> dict[str, Any]:
    """A PEM file with the private key and (ideally) the certificate, or a .pfx/.p12 file."""
    p = Path(path)
    if not p.is_file():
        raise GraphConfigError(f"MS_CLIENT_CERT_PATH does not name a readable file: {p.name}")
    if p.suffix.lower() in (".pfx", ".p12"):
        return {"private_key_pfx_path": str(p)}
    pem = p.read_text(encoding="utf-8", errors="replace")
    if "PRIVATE KEY-----" not in pem:
        raise GraphConfigError("MS_CLIENT_CERT_PATH must contain the PEM private key (and certificate)")
    cred: dict[str, Any] = {"private_key": pem}
    if "BEGIN CERTIFICATE" in pem:
        cred["public_certificate"] = pem[pem.index("-----BEGIN CERTIFICATE") :]
    elif thumbprint:
        cred["thumbprint"] = thumbprint.replace(":", "").strip()
    else:
        raise GraphConfigError(
            "MS_CLIENT_CERT_PATH has no certificate: append it to the PEM or set MS_CLIENT_CERT_THUMBPRINT"
        )
    return cred
