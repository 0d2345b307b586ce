"""Links from Slack to the secure page. They carry reference codes, study keys and opaque
handback tokens only, never an identifier or a credential: whoever opens one still signs in with
Slack, and sees only what their own role allows."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from bot.config import Settings

PREFIX = "/secure"


def base_url(settings: Settings) -> str:
    """The page's external base URL (PUBLIC_URL); on one machine (the sandbox), the local
    address the web process listens on."""
    if settings.public_url:
        return settings.public_url
    return f"http://{settings.host}:{settings.port}"


def _url(settings: Settings, path: str, query: dict[str, str] | None = None) -> str:
    url = base_url(settings) + PREFIX + path
    return url + ("?" + urlencode(query) if query else "")


def home_url(settings: Settings) -> str:
    return _url(settings, "/")


def contact_card_url(settings: Settings, ref: str) -> str:
    return _url(settings, "/c/" + quote(ref.upper(), safe=""))


def add_candidate_url(settings: Settings, study_key: str, handback: str | None = None) -> str:
    query = {"study": study_key.upper()}
    if handback:
        query["handback"] = handback
    return _url(settings, "/candidates/new", query)


def search_url(settings: Settings) -> str:
    return _url(settings, "/search")
