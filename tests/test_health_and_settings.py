"""Story: an operator deploys the bot. /healthz tells the load balancer whether the database
answers; a missing or malformed setting stops the process with one line naming the variable."""

from __future__ import annotations

import io

import pytest
import requests

from app import cli
from app.runtime import build_runtime
from bot.config import SettingsError, load_settings
from storage.db import Database
from tests.conftest import Bot, serve_wsgi

PROD_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-3",
    "SLACK_SIGNING_SECRET": "s3cret",
    "PRESCREEN_ENCRYPTION_KEYS": "x" * 43 + "=",
    "SLACK_OIDC_CLIENT_ID": "1234.5678",
    "SLACK_OIDC_CLIENT_SECRET": "oidc-s3cret",
    "PUBLIC_URL": "https://prescreen.example.org",
}


def test_healthz_ok_when_database_answers(bot: Bot) -> None:
    resp = requests.get(bot.url + "/healthz", timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"ok": True, "db": "ok"}


def test_healthz_503_when_database_is_down(settings, studies) -> None:  # type: ignore[no-untyped-def]
    down = Database("postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    rt = build_runtime(settings, db=down, migrate_db=False)
    server, url = serve_wsgi(rt.web)
    try:
        resp = requests.get(url + "/healthz", timeout=15)
    finally:
        server.shutdown()
        server.server_close()
    assert resp.status_code == 503
    assert resp.json()["ok"] is False


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:  # type: ignore[no-untyped-def]
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL",
                 "DATABASE_URL", "PORT", "HOST", "PRESCREEN_ENCRYPTION_KEYS", "MS_TENANT_ID",
                 "MS_CLIENT_ID", "MS_CLIENT_SECRET", "MS_CLIENT_CERT_PATH", "LOG_LEVEL",
                 "PHI_SURFACE", "SLACK_OIDC_CLIENT_ID", "SLACK_OIDC_CLIENT_SECRET",
                 "SLACK_OIDC_ISSUER", "PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return monkeypatch


def _valid_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SLACK_SIGNING_SECRET": None}, "SLACK_SIGNING_SECRET"),
        ({"PRESCREEN_ENCRYPTION_KEYS": None}, "PRESCREEN_ENCRYPTION_KEYS"),
        ({"PRESCREEN_ENCRYPTION_KEYS": "not-a-key"}, "PRESCREEN_ENCRYPTION_KEYS"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
        ({"PORT": "eighty"}, "PORT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"SLACK_APP_TOKEN": "xoxb-wrong-kind"}, "SLACK_APP_TOKEN"),
        ({"MS_TENANT_ID": "contoso"}, "MS_CLIENT_ID"),
        ({"SLACK_OIDC_CLIENT_ID": None}, "SLACK_OIDC_CLIENT_ID"),
        ({"SLACK_OIDC_CLIENT_SECRET": None}, "SLACK_OIDC_CLIENT_SECRET"),
        ({"PUBLIC_URL": None}, "PUBLIC_URL"),
        ({"PUBLIC_URL": "http://prescreen.example.org"}, "PUBLIC_URL"),
        ({"SLACK_OIDC_ISSUER": "http://slack.example.org"}, "SLACK_OIDC_ISSUER"),
        ({"PHI_SURFACE": "email"}, "PHI_SURFACE"),
    ],
)
def test_bad_settings_name_the_variable(clean_env: pytest.MonkeyPatch, env: dict[str, str | None],
                                        variable: str, capsys: pytest.CaptureFixture[str]) -> None:
    merged = {**PROD_ENV, "PRESCREEN_ENCRYPTION_KEYS": _valid_key(), **env}
    for k, v in merged.items():
        if v is not None:
            clean_env.setenv(k, v)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    message = str(exc.value)
    assert variable in message
    assert "\n" not in message

    code = cli.main(["jobs", "list"], out=io.StringIO())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and variable in err[0]


def test_no_token_means_sandbox_and_valid_production_settings_load(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().sandbox is True
    for k, v in {**PROD_ENV, "PRESCREEN_ENCRYPTION_KEYS": _valid_key()}.items():
        clean_env.setenv(k, v)
    settings = load_settings()
    assert settings.sandbox is False
    assert settings.socket_mode is False
    assert settings.port == 3000
    assert settings.portal and settings.slack_oidc_issuer == "https://slack.com"
    clean_env.setenv("DATABASE_URL", "postgres://u:p@db.example.org/prescreen")
    assert load_settings().database_url.startswith("postgresql+psycopg://")
    # identifiers in Slack (Enterprise Grid with a BAA): no secure page, so no sign-in settings
    for name in ("SLACK_OIDC_CLIENT_ID", "SLACK_OIDC_CLIENT_SECRET", "PUBLIC_URL"):
        clean_env.delenv(name)
    clean_env.setenv("PHI_SURFACE", "slack")
    assert load_settings().portal is False
    # http is accepted for a loopback PUBLIC_URL only
    clean_env.setenv("PUBLIC_URL", "http://127.0.0.1:3000/")
    assert load_settings().public_url == "http://127.0.0.1:3000"
