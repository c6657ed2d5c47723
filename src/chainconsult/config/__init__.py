"""Settings, read from the environment and validated once at start-up.

Every variable of the external contract (DESIGN.md) is read here, grouped by concern. Each group
is its own ``BaseSettings`` so that ``settings.database.max_connections`` reads as what it is,
while the environment keeps the flat names the specification uses. The groups infra reads are
defined in infra (infra/settings/, one module per component), so infra never imports this
package; the others live in this package's private modules. ``Settings`` composes them all.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from chainconsult.config._accounts import (
    AccountLifecycleSettings,
    IdentitySettings,
    LoginThrottleSettings,
)
from chainconsult.config._app import AppSettings, Environment
from chainconsult.config._escrow import EscrowSettings, EscrowToken
from chainconsult.infra.settings import SETTINGS_CONFIG, ConfigError
from chainconsult.infra.settings.alerting import MonitoringSettings
from chainconsult.infra.settings.backups import BackupSettings, StorageSettings
from chainconsult.infra.settings.caching import CacheSettings, RedisSettings
from chainconsult.infra.settings.conversations import ConversationSettings
from chainconsult.infra.settings.database import DatabaseSettings
from chainconsult.infra.settings.email_transport import EmailService, EmailSettings, SmtpTls
from chainconsult.infra.settings.job_queue import JobSettings, RetentionSettings
from chainconsult.infra.settings.rate_limits import RateLimitSettings
from chainconsult.infra.settings.security import PasswordHashSettings, SecuritySettings
from chainconsult.infra.settings.v1_lifecycle import VersioningSettings

__all__ = [
    "AccountLifecycleSettings",
    "AppSettings",
    "BackupSettings",
    "CacheSettings",
    "ConfigError",
    "ConversationSettings",
    "DatabaseSettings",
    "EmailService",
    "EmailSettings",
    "Environment",
    "EscrowSettings",
    "EscrowToken",
    "IdentitySettings",
    "JobSettings",
    "LoginThrottleSettings",
    "MonitoringSettings",
    "PasswordHashSettings",
    "RateLimitSettings",
    "RedisSettings",
    "RetentionSettings",
    "SecuritySettings",
    "Settings",
    "SmtpTls",
    "StorageSettings",
    "VersioningSettings",
    "load_settings",
    "settings_of",
]


class Settings(BaseSettings):
    """Everything the platform reads from its environment."""

    model_config = SETTINGS_CONFIG

    app: AppSettings = Field(default_factory=AppSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    login_throttle: LoginThrottleSettings = Field(default_factory=LoginThrottleSettings)
    password_hash: PasswordHashSettings = Field(default_factory=PasswordHashSettings)
    lifecycle: AccountLifecycleSettings = Field(default_factory=AccountLifecycleSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    versioning: VersioningSettings = Field(default_factory=VersioningSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    escrow: EscrowSettings = Field(default_factory=EscrowSettings)

    @model_validator(mode="after")
    def _production_needs_secret(self) -> Settings:
        if self.app.is_production and self.app.secret_key is None:
            raise ConfigError("SECRET_KEY: required when CHAINCONSULT_ENV=production")
        return self

    @property
    def admin_requires_2fa(self) -> bool:
        """ADMIN_REQUIRE_2FA, or production's default when it is unset."""
        required = self.identity.admin_require_2fa
        return self.app.is_production if required is None else required

    def secret_key(self) -> bytes:
        """The signing key; in development it is generated once and kept in the data dir."""
        if self.app.secret_key is not None:
            return self.app.secret_key.get_secret_value().encode()
        path = self.app.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not each write a different key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"]:
        # A check across several variables; its message names them itself.
        return message
    name = ".".join(str(part) for part in first["loc"])
    if "input" in first and first["type"] not in {"missing"} and not _is_secret(name):
        return f"{name}: {message} (got {first['input']!r})"
    return f"{name}: {message}"


def _is_secret(name: str) -> bool:
    return any(word in name for word in ("PASSWORD", "SECRET", "KEY", "URL"))


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the environment; raise ConfigError with one line on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def settings_of(owner: HTTPConnection | Starlette) -> Settings:
    """The app's settings, from a request or the app: ``create_app`` sets them before anything
    runs, so they are always there."""
    app = owner if isinstance(owner, Starlette) else owner.app
    settings: Settings = app.state.settings
    return settings
