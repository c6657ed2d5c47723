"""The database group of the settings: where PostgreSQL is and how the pool behaves."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG, ConfigError


class DatabaseSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    """PostgreSQL URL (postgresql://user:pass@host:5432/db). Unset: the embedded server."""
    max_connections: int = Field(20, ge=1, le=1000, validation_alias="DATABASE_MAX_CONNECTIONS")
    """Connections kept in each process's pool."""
    max_overflow: int = Field(10, ge=0, le=1000, validation_alias="DATABASE_MAX_OVERFLOW")
    """Extra connections a process may open above the pool size under bursts."""
    connection_timeout_ms: int = Field(
        10_000, ge=100, le=600_000, validation_alias="DATABASE_CONNECTION_TIMEOUT"
    )
    """Milliseconds to wait for a new connection or a free pooled one."""
    pool_recycle_seconds: int = Field(1800, ge=0, validation_alias="DATABASE_POOL_RECYCLE")
    """Seconds after which a pooled connection is replaced."""
    statement_timeout_ms: int = Field(
        5_000, ge=0, le=3_600_000, validation_alias="DATABASE_STATEMENT_TIMEOUT"
    )
    """Milliseconds a single statement of a request may run (0: no limit)."""
    slow_query_ms: int = Field(200, ge=1, validation_alias="SLOW_QUERY_MS")
    """Milliseconds after which a statement is logged and counted as slow."""
    embedded_max_down_seconds: float = Field(
        60.0, gt=0, le=86_400, validation_alias="EMBEDDED_POSTGRES_MAX_DOWN_SECONDS"
    )
    """Seconds the embedded PostgreSQL may stay down while `serve` restarts it before /livez
    fails (so that whatever supervises `serve` restarts it)."""
    embedded_state_file: Path | None = Field(None, validation_alias="CHAINCONSULT_EMBEDDED_STATE")
    """Where `serve`'s supervisor of the embedded PostgreSQL reports to its server workers (set
    by `serve` in embedded mode)."""

    @field_validator("url")
    @classmethod
    def _postgres_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        scheme = value.get_secret_value().split("://", 1)[0]
        if scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
            raise ValueError("must be a postgresql:// URL")
        return value

    @property
    def is_embedded(self) -> bool:
        return self.url is None

    def sqlalchemy_url(self) -> str:
        """The URL with the psycopg 3 driver, whatever spelling the operator used."""
        if self.url is None:
            raise ConfigError("DATABASE_URL: not set and the embedded server was not started")
        raw = self.url.get_secret_value()
        _, rest = raw.split("://", 1)
        return f"postgresql+psycopg://{rest}"

    def libpq_url(self) -> str:
        """The URL as libpq (and so plain psycopg and procrastinate) understands it."""
        return self.sqlalchemy_url().replace("postgresql+psycopg://", "postgresql://", 1)
