"""Typed Microsoft Graph errors. Messages are plain sentences an operator can act on; they never
contain tokens, secrets or request bodies."""

from __future__ import annotations

import re

# Entra ID (AADSTS) error codes seen with the client-credentials flow, in plain words.
AADSTS_MESSAGES: dict[int, str] = {
    65001: "admin consent is missing: a tenant admin must grant the app's application permissions "
    "(Entra admin center > App registrations > API permissions > Grant admin consent)",
    650057: "the requested resource is not in the app registration's API permissions: add Microsoft Graph "
    "application permission Calendars.ReadBasic.All or Calendars.Read and grant admin consent",
    500011: "the Microsoft Graph service principal is not found in this tenant; check the tenant id",
    7000215: "the client secret is wrong: use the secret's Value, not its Secret ID (MS_CLIENT_SECRET)",
    7000222: "the client secret has expired: create a new one in the app registration and update "
    "MS_CLIENT_SECRET",
    7000218: "no client secret or certificate was sent: set MS_CLIENT_SECRET or MS_CLIENT_CERT_PATH",
    700016: "the application (client) id is not known in this tenant: check MS_CLIENT_ID and MS_TENANT_ID",
    7000112: "the application is disabled in this tenant",
    700024: "the certificate assertion is outside its valid time range: check the server clock",
    700027: "the certificate does not match one uploaded to the app registration "
    "(check MS_CLIENT_CERT_PATH and MS_CLIENT_CERT_THUMBPRINT)",
    700023: "the certificate assertion was rejected: check the certificate and its thumbprint",
    90002: "the tenant is not found: check MS_TENANT_ID (a GUID or a domain such as contoso.onmicrosoft.com)",
    900023: "MS_TENANT_ID is neither a tenant GUID nor a verified domain name",
    90014: "the token request is missing a required field (client id, scope or credential)",
    53003: "a Conditional Access policy blocked the app's sign-in",
    50049: "MS_AUTHORITY_HOST or MS_TENANT_ID does not form a valid authority URL",
}

_AADSTS_RE = re.compile(r"AADSTS(\d{5,7})")


def aadsts_codes(*texts: object) -> list[int]:
    codes: list[int] = []
    for text in texts:
        if isinstance(text, list | tuple):
            codes.extend(int(c) for c in text if str(c).isdigit())
        elif text:
            codes.extend(int(c) for c in _AADSTS_RE.findall(str(text)))
    return list(dict.fromkeys(codes))


def explain_aadsts(codes: list[int], fallback: str) -> str:
    for code in codes:
        if code in AADSTS_MESSAGES:
            return f"AADSTS{code}: {AADSTS_MESSAGES[code]}"
    if codes:
        return f"AADSTS{codes[0]}: {fallback}"
    return fallback


class GraphError(Exception):
    """Anything that stops a Graph read. `str(err)` is safe to log and to show an operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GraphConfigError(GraphError):
    """Missing or unusable credentials/settings, detected before any request."""


class GraphAuthError(GraphError):
    """The identity provider refused to issue a token (wrong secret, unknown app/tenant, consent)."""

    def __init__(self, message: str, codes: list[int] | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.codes = codes or []
        self.error = error


class GraphUnavailable(GraphError):
    """Network error, timeout, or throttling/outage that outlasted the retries: try again later."""


class GraphThrottled(GraphUnavailable):
    """429 responses outlasted the retries."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GraphRequestError(GraphError):
    """Graph answered with a non-retryable error (permissions, unknown mailbox, bad request)."""

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GraphSyncReset(GraphRequestError):
    """The delta token is no longer valid (410 Gone / syncStateNotFound): a full resync is needed."""


GRAPH_CODE_MESSAGES: dict[str, str] = {
    "erroraccessdenied": "access denied: the app needs the Calendars.ReadBasic.All (or Calendars.Read) "
    "application permission with admin consent, and an application access policy "
    "may exclude this mailbox",
    "authorization_requestdenied": "access denied: the app lacks the required application permission",
    "invalidauthenticationtoken": "Graph rejected the access token (wrong tenant or audience, or expired)",
    "errorinvaliduser": "the mailbox is not a user in this tenant",
    "resourcenotfound": "the mailbox is not found in this tenant",
    "mailboxnotenabledforrestapi": "the mailbox is inactive, soft-deleted, or hosted on-premises",
    "errormailboxnotfound": "the mailbox is not found",
    "errorinvalidparameter": "Graph rejected a request parameter",
}


def explain_graph_error(status: int, code: str | None, message: str | None) -> str:
    key = (code or "").lower()
    plain = GRAPH_CODE_MESSAGES.get(key)
    if plain is None:
        if status == 403:
            plain = GRAPH_CODE_MESSAGES["erroraccessdenied"]
        elif status == 404:
            plain = GRAPH_CODE_MESSAGES["resourcenotfound"]
        elif status == 401:
            plain = GRAPH_CODE_MESSAGES["invalidauthenticationtoken"]
        else:
            plain = (message or "request failed")[:200]
    return f"HTTP {status} {code or ''}: {plain}".replace("  ", " ")
