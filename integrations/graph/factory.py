"""Build the process-wide Graph client from settings (one msal application per process)."""

from __future__ import annotations

from typing import Protocol

from integrations.graph.auth import MsalCredential
from integrations.graph.client import GraphClient


class GraphSettings(Protocol):
    ms_tenant_id: str | None
    ms_client_id: str | None
    ms_client_secret: str | None
    ms_client_cert_path: str | None
    ms_client_cert_thumbprint: str | None
    ms_authority_host: str
    graph_api_url: str

    @property
    def graph_configured(self) -> bool: ...


def client_from_settings(
    settings: GraphSettings, *, verify: bool | str = True, **client_options: object
) -> GraphClient | None:
    """A GraphClient when Graph is configured, else None. Makes no network call.

    Raises GraphConfigError (one line naming the setting) for unusable credentials.
    """
    if not settings.graph_configured:
        return None
    credential = MsalCredential(
        tenant_id=settings.ms_tenant_id or "",
        client_id=settings.ms_client_id or "",
        client_secret=settings.ms_client_secret,
        cert_path=settings.ms_client_cert_path,
        cert_thumbprint=settings.ms_client_cert_thumbprint,
        authority_host=settings.ms_authority_host,
        verify=verify,
    )
    return GraphClient(credential, base_url=settings.graph_api_url, verify=verify, **client_options)  # type: ignore[arg-type]
