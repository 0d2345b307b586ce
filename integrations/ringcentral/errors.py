"""Typed RingCentral errors. Messages are sentences an operator can act on; they never carry a
token, the JWT, a phone number or a request body."""

from __future__ import annotations

import re


class RcError(Exception):
    """Anything that stops a RingCentral request. `str(err)` is safe to log and to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RcAuthError(RcError):
    """The token endpoint refused the JWT or the app's credentials."""


class RcUnavailable(RcError):
    """Network error, timeout or outage: try again later."""


class RcRateLimited(RcUnavailable):
    """429 responses outlasted the retries; `retry_after` is RingCentral's last Retry-After."""

    def __init__(self, message: str, retry_after: float | None = None, group: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.group = group


class RcRequestError(RcError):
    """RingCentral answered with a non-retryable error."""

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RcPermissionError(RcRequestError):
    """The app lacks a permission (ReadCallLog, RingOut, SMS, ReadAccounts…); `permission` names it."""

    def __init__(self, message: str, status: int, code: str | None, permission: str | None) -> None:
        super().__init__(message, status, code)
        self.permission = permission


class RcNotFound(RcRequestError):
    """The extension (or RingOut) is not known to the account."""


class RcSyncReset(RcRequestError):
    """The call-log sync token is no longer valid: a full sync is needed."""


_PERMISSION = re.compile(r"\[([A-Za-z]+)\] permission")


def permission_in(message: str | None) -> str | None:
    """RingCentral names the missing permission in brackets: "…needs to have [ReadCallLog] permission"."""
    match = _PERMISSION.search(message or "")
    return match.group(1) if match else None


AUTH_MESSAGES = {
    "OAU-213": "the JWT has expired: create a new JWT credential in the RingCentral developer "
               "console and update RINGCENTRAL_JWT",
    "OAU-251": "this app is not authorized for the JWT grant: in the app's settings choose "
               "'JWT auth flow'",
    "OAU-140": "the JWT is not valid for this app or account: check RINGCENTRAL_JWT and that the "
               "credential allows this app's client id",
    "OAU-211": "the JWT's user is disabled or the token was revoked",
    "OAU-153": "the client id or secret is wrong: check RINGCENTRAL_CLIENT_ID and "
               "RINGCENTRAL_CLIENT_SECRET",
}


def explain_auth(status: int, error: str | None, code: str | None, description: str | None) -> str:
    if code in AUTH_MESSAGES:
        return f"{code}: {AUTH_MESSAGES[code]}"
    if error == "invalid_client" or status == 401:
        return AUTH_MESSAGES["OAU-153"]
    if error == "unauthorized_client":
        return AUTH_MESSAGES["OAU-251"]
    if error == "invalid_grant":
        text = (description or "").lower()
        if "expired" in text:
            return f"OAU-213: {AUTH_MESSAGES['OAU-213']}"
        return AUTH_MESSAGES["OAU-140"]
    return f"token request failed (HTTP {status} {error or ''})".strip()
