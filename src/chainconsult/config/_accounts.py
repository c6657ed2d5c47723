"""The accounts' groups of the settings: the login throttle (accounts/throttle.py), the
account lifecycle (reset, verification) and identity (two-factor, Sign-In with Ethereum)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from chainconsult.infra.settings import SETTINGS_CONFIG, split_commas


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
    """Longest wait of a login for a password-hashing slot, and for one of the database
    slots below (ms); past it the login is shed with 503 and Retry-After."""
    database_slots: int = Field(4, ge=1, le=1000, validation_alias="LOGIN_DATABASE_SLOTS")
    """Logins per server process that may count their attempt and read the account at once;
    as many again wait holding no database connection, and further ones are answered 503
    login-busy at once: a burst of logins on one account (which queue on its counter row)
    takes neither the pool nor the event loop from other requests."""

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


class AccountLifecycleSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    password_reset_ttl_seconds: int = Field(
        1800, ge=60, le=86_400, validation_alias="PASSWORD_RESET_TTL_SECONDS"
    )
    """Seconds a password-reset link stays usable (once)."""
    email_verification_ttl_seconds: int = Field(
        86_400, ge=60, le=30 * 86_400, validation_alias="EMAIL_VERIFICATION_TTL_SECONDS"
    )
    """Seconds an email-verification link stays usable (once)."""
    require_verified_email: bool = Field(True, validation_alias="REQUIRE_VERIFIED_EMAIL")
    """Refuse applying, submitting projects, proposing and messaging (403 `email-unverified`)
    until the account's address is verified."""


class IdentitySettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    admin_require_2fa: bool | None = Field(None, validation_alias="ADMIN_REQUIRE_2FA")
    """Refuse admin routes (403 mfa-required) to admins without two-factor login. Unset: true
    when CHAINCONSULT_ENV=production, false otherwise."""
    siwe_chain_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [1, 8453, 42161], validation_alias="SIWE_CHAIN_IDS"
    )
    """EIP-155 chain ids a Sign-In with Ethereum message may name (comma list)."""

    @field_validator("siwe_chain_ids", mode="before")
    @classmethod
    def _chain_ids(cls, value: Any) -> Any:
        ids = split_commas(value)
        if isinstance(ids, list) and not ids:
            raise ValueError("must name at least one chain id, like 1,8453,42161")
        return ids
