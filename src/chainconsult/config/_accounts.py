"""The login throttle group of the settings (accounts/throttle.py)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class LoginThrottleSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    window_seconds: int = Field(3600, ge=1, le=86_400, validation_alias="LOGIN_THROTTLE_WINDOW")
    """Seconds over which failed logins are counted (a lockout lasts until the window ends)."""
    free_failures: int = Field(5, ge=1, le=100, validation_alias="LOGIN_THROTTLE_FREE_FAILURES")
    """Failures per account before each further attempt must wait a growing delay."""
    lockout_failures: int = Field(
        20, ge=2, le=100, validation_alias="LOGIN_THROTTLE_LOCKOUT_FAILURES"
    )
    """Failures per account within the window that lock it (ASVS 2.2.1 caps this at 100)."""
    max_delay_seconds: int = Field(300, ge=1, le=3600, validation_alias="LOGIN_THROTTLE_MAX_DELAY")
    """Longest delay in seconds between attempts before the lockout."""
    ip_free_failures: int = Field(
        20, ge=1, le=10_000, validation_alias="LOGIN_THROTTLE_IP_FREE_FAILURES"
    )
    """Failures from one client IP (over all accounts) before its attempts are delayed."""
    ip_lockout_failures: int = Field(
        100, ge=2, le=100_000, validation_alias="LOGIN_THROTTLE_IP_LOCKOUT_FAILURES"
    )
    """Failures from one client IP within the window that stop its logins until it ends."""
    hash_wait_ms: int = Field(2000, ge=0, le=60_000, validation_alias="LOGIN_HASH_WAIT_MS")
    """Longest wait of a login for a password-hashing slot (ms); past it the login is shed
    with 503 and Retry-After."""

    @model_validator(mode="after")
    def _ordered(self) -> LoginThrottleSettings:
        if self.free_failures >= self.lockout_failures:
            raise ValueError(
                "LOGIN_THROTTLE_FREE_FAILURES must be below LOGIN_THROTTLE_LOCKOUT_FAILURES"
            )
        if self.ip_free_failures >= self.ip_lockout_failures:
            raise ValueError(
                "LOGIN_THROTTLE_IP_FREE_FAILURES must be below LOGIN_THROTTLE_IP_LOCKOUT_FAILURES"
            )
        return self
