"""The RingCentral stand-in for the stories: an account with an extension per coordinator (matched
by email), a JWT credential, and settings that point the app at it. A test module overrides the
`settings` fixture with `rc_settings` to run the bot with RingCentral configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import Settings
from sandbox.ringcentral_standin import RingCentralStandin

WEBHOOK_TOKEN = "rc-verification-token-0123456789"
NUMBERS = {"casey@example.org": "+16175550101", "sam@example.org": "+13125550102",
           "lee@example.org": "+13125550103"}
TEXTING_NUMBER = "+16175550150"


@pytest.fixture
def rc_standin() -> Iterator[RingCentralStandin]:
    server = RingCentralStandin().start()
    for email, number in NUMBERS.items():
        server.add_extension(email, number)
    yield server
    server.stop()


def rc_settings(settings: Settings, standin: RingCentralStandin, jwt: str | None = None
                ) -> Settings:
    return settings.model_copy(update={
        "ringcentral_server_url": standin.url, "ringcentral_client_id": standin.client_id,
        "ringcentral_client_secret": standin.client_secret,
        "ringcentral_jwt": jwt or standin.issue_jwt(),
        "ringcentral_webhook_token": WEBHOOK_TOKEN})


def extension_of(standin: RingCentralStandin, email: str) -> str:
    return next(e.id for e in standin.extensions.values() if e.email == email)
