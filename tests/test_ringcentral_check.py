"""Story: an admin sets up RingCentral and runs `prescreen-bot ringcentral check [EMAIL]`. It gets
a token with the JWT, finds the extension, reads the last day's call log and says exactly what is
missing — a permission, an expired or wrong JWT, an unknown email, a rate limit, the network —
with exit code 0 only when everything works."""

from __future__ import annotations

import datetime as dt
import io
import socket
from collections.abc import Iterator

import pytest

from app.cli import _parser
from app.cli.ringcentral import ringcentral_check
from bot.config import Settings
from sandbox.ringcentral_standin import RingCentralStandin

NOW = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)


@pytest.fixture
def rc() -> Iterator[RingCentralStandin]:
    server = RingCentralStandin().start()
    server.add_extension("admin@example.org", "+16175550100", number="101")
    ext = server.add_extension("casey@example.org", "+16175550101", number="102")
    server.add_call(ext.id, "+13125550199", "No Answer", start=NOW - dt.timedelta(hours=2))
    yield server
    server.stop()


def settings_for(rc: RingCentralStandin, jwt: str | None = None, **extra: object) -> Settings:
    return Settings(_env_file=None, ringcentral_server_url=rc.url,  # type: ignore[call-arg]
                    ringcentral_client_id=rc.client_id, ringcentral_client_secret=rc.client_secret,
                    ringcentral_jwt=jwt or rc.issue_jwt(), public_url="https://prescreen.example.org",
                    **extra)


def check(settings: Settings, email: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = ringcentral_check(settings, email, out, now=NOW)
    return code, out.getvalue()


def test_everything_in_place(rc: RingCentralStandin) -> None:
    casey = next(e for e in rc.extensions.values() if e.email == "casey@example.org")
    code, text = check(settings_for(rc), "Casey@example.org")
    assert code == 0
    assert text.splitlines() == [
        f"ok   token acquired with the JWT ({rc.url})",
        f"ok   extension 102 (id {casey.id}, Enabled)",
        "ok   1 call(s) in the last day's call log",
    ]


def test_without_an_email_the_jwts_own_extension_is_checked(rc: RingCentralStandin) -> None:
    code, text = check(settings_for(rc))
    assert code == 0 and "ok   extension 101" in text


def test_not_configured(rc: RingCentralStandin) -> None:
    code, text = check(Settings(_env_file=None))  # type: ignore[call-arg]
    assert code == 1
    assert text.startswith("FAIL RingCentral is not configured: set RINGCENTRAL_CLIENT_ID, "
                           "RINGCENTRAL_CLIENT_SECRET and RINGCENTRAL_JWT")


def test_an_expired_jwt(rc: RingCentralStandin) -> None:
    code, text = check(settings_for(rc, rc.issue_jwt("expired")))
    assert code == 1
    assert text == ("FAIL cannot get a token: OAU-213: the JWT has expired: create a new JWT "
                    "credential in the RingCentral developer console and update RINGCENTRAL_JWT\n")


def test_a_wrong_jwt_and_a_wrong_secret(rc: RingCentralStandin) -> None:
    code, text = check(settings_for(rc, "eyJnot-a-real-one"))
    assert code == 1 and "the JWT is not valid for this app or account" in text
    bad = settings_for(rc).model_copy(update={"ringcentral_client_secret": "nope"})
    code, text = check(bad)
    assert code == 1 and "the client id or secret is wrong" in text


@pytest.mark.parametrize("permission", ["ReadCallLog", "RingOut", "SMS", "ReadAccounts"])
def test_a_missing_permission_is_named(rc: RingCentralStandin, permission: str) -> None:
    rc.permissions.discard(permission)
    code, text = check(settings_for(rc), "casey@example.org")
    assert code == 1
    assert f"the app lacks the {permission} permission" in text


def test_an_unknown_email(rc: RingCentralStandin) -> None:
    code, text = check(settings_for(rc), "robin@example.org")
    assert code == 1
    assert "FAIL no extension with the email robin@example.org in this RingCentral account" in text


def test_rate_limited(rc: RingCentralStandin) -> None:
    rc.rate_limit(5, retry_after=30, group="Medium")
    code, text = check(settings_for(rc), "casey@example.org")
    assert code == 1
    assert text.splitlines()[-1].startswith(
        "FAIL rate limited while reading the extension: rate limited by RingCentral (Medium group)")


def test_network(rc: RingCentralStandin) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = settings_for(rc).model_copy(update={"ringcentral_server_url":
                                                   f"http://127.0.0.1:{port}"})
    code, text = check(settings)
    assert code == 1
    assert text.startswith(f"FAIL network: cannot reach http://127.0.0.1:{port}")


def test_the_command_is_wired() -> None:
    args = _parser().parse_args(["ringcentral", "check", "casey@example.org"])
    assert args.email == "casey@example.org" and args.func.__module__ == "app.cli.ringcentral"


def test_half_a_configuration_refuses_to_start() -> None:
    from bot.config import SettingsError, load_settings
    from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, PORTAL_ENV, SIGNING_SECRET

    base = {"slack_bot_token": BOT_TOKEN, "slack_signing_secret": SIGNING_SECRET,
            "prescreen_encryption_keys": ENCRYPTION_KEY, "_env_file": None,
            **{k.lower(): v for k, v in PORTAL_ENV.items()}}
    with pytest.raises(SettingsError, match="RINGCENTRAL_JWT is required when RingCentral is used"):
        load_settings(**base, ringcentral_client_id="id", ringcentral_client_secret="secret")
    with pytest.raises(SettingsError, match="RINGCENTRAL_WEBHOOK_TOKEN"):
        load_settings(**base, ringcentral_client_id="id", ringcentral_client_secret="secret",
                      ringcentral_jwt="eyJ")
    with pytest.raises(SettingsError, match="RINGCENTRAL_SERVER_URL must start with https://"):
        load_settings(**base, ringcentral_server_url="http://platform.ringcentral.com")
    ok = load_settings(**base, ringcentral_client_id="id", ringcentral_client_secret="secret",
                       ringcentral_jwt="eyJ", ringcentral_webhook_token="t" * 20)
    assert ok.ringcentral_configured
    assert not load_settings(**base).ringcentral_configured
