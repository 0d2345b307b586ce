"""RingCentral REST API: JWT bearer auth, extensions, RingOut, call-log sync, SMS, webhooks."""

from integrations.ringcentral.client import (
    CallLogPage,
    Extension,
    RingCentralClient,
    RingOut,
    client_from_settings,
)
from integrations.ringcentral.errors import (
    RcAuthError,
    RcError,
    RcNotFound,
    RcPermissionError,
    RcRateLimited,
    RcRequestError,
    RcSyncReset,
    RcUnavailable,
)

__all__ = [
    "CallLogPage",
    "Extension",
    "RcAuthError",
    "RcError",
    "RcNotFound",
    "RcPermissionError",
    "RcRateLimited",
    "RcRequestError",
    "RcSyncReset",
    "RcUnavailable",
    "RingCentralClient",
    "RingOut",
    "client_from_settings",
]
