"""The application group of the settings: environment, data directory, secret key, logging."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class Environment(StrEnum):
    development = "development"
    production = "production"
    test = "test"


class AppSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    environment: Environment = Field(Environment.development, validation_alias="CHAINCONSULT_ENV")
    """development, production or test; production turns on Secure cookies, HSTS and
    requires SECRET_KEY."""
    data_dir: Path = Field(Path("var"), validation_alias="CHAINCONSULT_DATA_DIR")
    """Where the embedded PostgreSQL, the generated secret key and run-time files live."""
    secret_key: SecretStr | None = Field(None, validation_alias="SECRET_KEY")
    """Key for signing CSRF tokens and other secrets; at least 32 characters."""
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    """Minimum level of the JSON log lines written to standard output: DEBUG, INFO, WARNING,
    ERROR or CRITICAL."""
    log_to_database: bool = Field(False, validation_alias="LOG_TO_DATABASE")
    """Store warnings, errors and alerts in the database for the status dashboard."""
    shutdown_grace_seconds: int = Field(
        30, ge=1, le=3600, validation_alias="SHUTDOWN_GRACE_SECONDS"
    )
    """Seconds `serve` lets in-flight requests finish after SIGTERM before cutting them off."""

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production
