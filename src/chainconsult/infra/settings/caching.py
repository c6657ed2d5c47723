"""The Redis connection (one pool per process, shared by the cache, rate limits, live updates
and monitoring: infra/resources.py) and the cache group of the settings."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class RedisSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    url: SecretStr | None = Field(None, validation_alias="REDIS_URL")
    """redis:// or rediss:// (TLS). Unset: every Redis use falls back to process memory."""
    upstash_rest_url: str | None = Field(None, validation_alias="UPSTASH_REDIS_REST_URL")
    """Accepted only to explain that Upstash's rediss:// URL belongs in REDIS_URL."""
    key_prefix: str = Field(
        "chainconsult", min_length=1, max_length=64, validation_alias="REDIS_KEY_PREFIX"
    )
    """Prefix of every key this deployment writes, so several can share one Redis."""
    socket_timeout_ms: int = Field(250, ge=10, le=60_000, validation_alias="REDIS_SOCKET_TIMEOUT")
    """Milliseconds a Redis call may take before the in-memory fallback is used."""

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().split("://", 1)[0] not in {
            "redis",
            "rediss",
            "unix",
        }:
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @model_validator(mode="after")
    def _upstash_needs_redis_url(self) -> RedisSettings:
        if self.upstash_rest_url and self.url is None:
            raise ValueError(
                "UPSTASH_REDIS_REST_URL is set but the REST API is not used: put the database's "
                "rediss:// URL (from the Upstash console) in REDIS_URL"
            )
        return self


class CacheSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    enabled: bool = Field(True, validation_alias="CACHE_ENABLED")
    """Serve hot reads from the cache; false sends every read to the database (benchmarks,
    debugging)."""
    memory_max_mb: int = Field(64, ge=1, le=65_536, validation_alias="CACHE_MEMORY_MAX_MB")
    """Megabytes of encoded values the in-process cache (L1) of each process may hold."""
