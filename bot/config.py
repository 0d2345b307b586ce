"""Settings: the only place the environment is read."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SANDBOX_DB_FILE = "prescreen-sandbox.db"
# Settings that only a real deployment has (credentials, keys): any of them set without a bot
# token means a deployment lost its token, not someone trying the sandbox.
_REAL_SETTING = re.compile(r"secret|token|key|password|client_id|tenant_id|cert|jwt")


class SettingsError(Exception):
    """A missing or malformed setting; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR / 'prescreen.db'}"
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    prescreen_encryption_keys: str | None = None
    ms_tenant_id: str | None = None
    ms_client_id: str | None = None
    ms_client_secret: str | None = None
    ms_client_cert_path: str | None = None
    ms_client_cert_thumbprint: str | None = None
    ms_authority_host: str = "https://login.microsoftonline.com"
    graph_api_url: str = "https://graph.microsoft.com/v1.0"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    # GET /metrics (Prometheus): off unless METRICS_TOKEN (bearer, at the web port) or
    # METRICS_PORT (its own loopback port) is set
    metrics_token: str | None = Field(default=None, repr=False)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    default_timezone: str = "America/New_York"
    data_dir: Path = DEFAULT_DATA_DIR
    web_concurrency: int = Field(default=2, ge=1, le=64)
    outbox_channel_interval: float = Field(default=1.0, ge=0, le=60)
    callback_remind_minutes: int = Field(default=10, ge=0, le=240)
    callback_escalate_minutes: int = Field(default=30, ge=1, le=24 * 60)
    prescreen_require_separate_db_role: bool = False  # refuse to start as the audit table's owner
    # Where patient identifiers are entered and read: `portal` (the bot's secure page, signed in
    # with Slack) or `slack` (modals and ephemerals; only for Enterprise Grid with a BAA).
    phi_surface: Literal["portal", "slack"] = "portal"
    # Sign in with Slack (OpenID Connect) for the secure page. Not SLACK_CLIENT_ID/SECRET, which
    # would switch Bolt into its multi-workspace install flow.
    slack_oidc_client_id: str | None = None
    slack_oidc_client_secret: str | None = None
    slack_oidc_issuer: str = "https://slack.com"
    public_url: str | None = None  # the secure page's external base URL, e.g. https://prescreen.example.org
    # RingCentral (click-to-call, call log, texts): a server app with the JWT credential.
    ringcentral_server_url: str = "https://platform.ringcentral.com"
    ringcentral_client_id: str | None = None
    ringcentral_client_secret: str | None = None
    ringcentral_jwt: str | None = None
    ringcentral_webhook_token: str | None = None  # the subscription's verification token

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v if v.endswith("/") else v + "/"

    @field_validator("phi_surface", mode="before")
    @classmethod
    def _phi_surface(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("slack_oidc_issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        return base_url(v, "https://slack.com")

    @field_validator("ringcentral_server_url")
    @classmethod
    def _rc_server(cls, v: str) -> str:
        return base_url(v, "https://platform.ringcentral.com")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        return base_url(v, "https://prescreen.example.org") if v and v.strip() else None

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        if v.startswith("postgres://"):
            v = "postgresql+psycopg://" + v[len("postgres://") :]
        elif v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://") :]
        if not v.startswith(("sqlite:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        v = v.upper()
        if v not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return v

    @field_validator("default_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not an IANA timezone like America/New_York") from exc
        return v

    @field_validator("prescreen_encryption_keys")
    @classmethod
    def _keys(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None

        for key in (k.strip() for k in v.split(",") if k.strip()):
            try:
                Fernet(key)
            except (ValueError, TypeError) as exc:
                raise ValueError("each key must be a urlsafe base64 32-byte Fernet key") from exc
        return v

    @model_validator(mode="after")
    def _sandbox_database(self) -> Settings:
        # Without a bot token and without DATABASE_URL the sandbox keeps its own file, so the
        # default real database (data/prescreen.db) is never opened by the sandbox.
        if not self.slack_bot_token and "database_url" not in self.model_fields_set:
            self.database_url = self.sandbox_database_url
        return self

    # ----- derived -----
    @property
    def sandbox_database_url(self) -> str:
        return f"sqlite:///{self.data_dir / SANDBOX_DB_FILE}"

    def sandbox_conflicts(self) -> list[str]:
        """The production-like settings that are set (names as in the environment): any of
        them forbids the sandbox, which runs only when nothing real is configured."""
        found = [name.upper() for name, info in type(self).model_fields.items()
                 if name != "slack_bot_token" and _REAL_SETTING.search(name)
                 and getattr(self, name) not in (None, "", info.default)]
        if self.database_url != self.sandbox_database_url:
            found.append("DATABASE_URL")
        if not is_loopback_host(self.host):
            found.append(f"HOST ({self.host} is not loopback)")
        return found

    def check_sandbox(self) -> None:
        """Refuse (SettingsError, one line) to fall back to the sandbox on real settings."""
        if not self.sandbox or not (found := self.sandbox_conflicts()):
            return
        names = found[0] if len(found) == 1 else ", ".join(found[:-1]) + " and " + found[-1]
        verb, them = ("is", "it") if len(found) == 1 else ("are", "them")
        raise SettingsError(
            f"SLACK_BOT_TOKEN is not set, but {names} {verb}: refusing to start the sandbox on "
            f"real settings. Set SLACK_BOT_TOKEN, or unset {them} to try the sandbox."
        )

    @property
    def sandbox(self) -> bool:
        """No Slack credentials: run against the built-in Slack stand-in."""
        return not self.slack_bot_token

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token) and not self.sandbox

    @property
    def graph_configured(self) -> bool:
        return bool(
            self.ms_tenant_id
            and self.ms_client_id
            and (self.ms_client_secret or self.ms_client_cert_path)
        )

    @property
    def ringcentral_configured(self) -> bool:
        """RingCentral is used only when its three credentials are set; otherwise nothing changes."""
        return bool(self.ringcentral_client_id and self.ringcentral_client_secret
                    and self.ringcentral_jwt)

    @property
    def ringcentral_webhook_url(self) -> str | None:
        return f"{self.public_url}/ringcentral/webhook" if self.public_url else None

    @property
    def portal(self) -> bool:
        """Identifiers live on the secure page only; no Slack surface carries them."""
        return self.phi_surface == "portal"

    @property
    def encryption_keys(self) -> list[str]:
        if not self.prescreen_encryption_keys:
            return []
        return [k.strip() for k in self.prescreen_encryption_keys.split(",") if k.strip()]

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def check_production(self) -> None:
        """Fail fast (one line, naming the variable) when a real workspace is configured badly."""
        if self.sandbox:
            return
        if not self.slack_bot_token.startswith("xoxb-"):  # type: ignore[union-attr]
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        if self.slack_app_token:
            if not self.slack_app_token.startswith("xapp-"):
                raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        elif not self.slack_signing_secret:
            raise SettingsError(
                "SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)"
            )
        if not self.encryption_keys:
            raise SettingsError(
                "PRESCREEN_ENCRYPTION_KEYS is required: generate one with "
                "`prescreen-bot keys generate`"
            )
        if self.portal:
            for name in ("slack_oidc_client_id", "slack_oidc_client_secret", "public_url"):
                if not getattr(self, name):
                    raise SettingsError(
                        f"{name.upper()} is required with PHI_SURFACE=portal (the default): the "
                        "secure page signs people in with Slack. See the README's Privacy section"
                    )
        rc = ("ringcentral_client_id", "ringcentral_client_secret", "ringcentral_jwt")
        if any(getattr(self, name) for name in rc):
            for name in rc:
                if not getattr(self, name):
                    raise SettingsError(f"{name.upper()} is required when RingCentral is used "
                                        "(see the README's RingCentral section)")
            if not self.ringcentral_webhook_token or len(self.ringcentral_webhook_token) < 16:
                raise SettingsError("RINGCENTRAL_WEBHOOK_TOKEN (at least 16 characters) is "
                                    "required when RingCentral is used: it proves texts come "
                                    "from RingCentral")
        if any([self.ms_tenant_id, self.ms_client_id, self.ms_client_secret]):
            for name in ("ms_tenant_id", "ms_client_id"):
                if not getattr(self, name):
                    raise SettingsError(f"{name.upper()} is required when Microsoft Graph is used")
            if not (self.ms_client_secret or self.ms_client_cert_path):
                raise SettingsError(
                    "MS_CLIENT_SECRET or MS_CLIENT_CERT_PATH is required when Microsoft Graph is used"
                )


def base_url(value: str, example: str) -> str:
    """A service's base URL without a trailing slash: https, or http for a loopback host only;
    no query, fragment or credentials. ValueError says what is wrong, with `example`."""
    v = value.strip().rstrip("/")
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be a base URL like {example}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must start with https:// (http:// only for a loopback host)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must be a plain base URL, without query, fragment or credentials")
    return v


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback IP address (IPv6 with or without brackets)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Read settings from env/.env; raise SettingsError with one line naming the variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]).upper() if err.get("loc") else "setting"
        msg = err.get("msg", "is invalid").removeprefix("Value error, ")
        raise SettingsError(f"{field} {msg}") from None
    settings.check_production()
    return settings
