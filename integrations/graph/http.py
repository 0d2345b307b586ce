"""A requests Session whose TLS trust and timeout cannot be overridden by environment variables."""

from __future__ import annotations

from typing import Any

import requests


class PinnedSession(requests.Session):
    """Every request uses this session's `verify` and a default timeout.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace `session.verify` when a call does not
    pass `verify`; passing it explicitly on each call keeps an operator-chosen CA bundle in force.
    """

    def __init__(self, verify: bool | str = True, timeout: float | tuple[float, float] = (5.0, 30.0)) -> None:
        super().__init__()
        self.verify = verify
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.default_timeout)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        if kwargs.get("verify") is None:
            kwargs["verify"] = self.verify
        return super().request(method, url, *args, **kwargs)
