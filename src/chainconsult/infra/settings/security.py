"""The security groups of the settings: the edge (origins, IP lists, body and time limits)
and the password hash cost."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import (
    SETTINGS_CONFIG,
    IPNetwork,
    NetworkList,
    StringList,
    parse_networks,
    split_commas,
)


class SecuritySettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    allowed_origins: StringList = Field(default_factory=list, validation_alias="ALLOWED_ORIGINS")
    """Origins (scheme://host[:port]) allowed to call the API from a browser with credentials."""
    trusted_ips: NetworkList = Field(default_factory=list, validation_alias="TRUSTED_IPS")
    """IPs/CIDRs that bypass rate limits and may read detailed health and /metrics."""
    blocked_ips: NetworkList = Field(default_factory=list, validation_alias="BLOCKED_IPS")
    """IPs/CIDRs refused with 403 before any other work."""
    trusted_proxies: NetworkList = Field(default_factory=list, validation_alias="TRUSTED_PROXIES")
    """Peers whose X-Forwarded-For header is believed."""
    session_ttl_seconds: int = Field(
        43_200, ge=60, le=30 * 86_400, validation_alias="SESSION_TTL_SECONDS"
    )
    """Seconds a login (bearer token and session cookie) lasts."""
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="MAX_BODY_BYTES")
    """Largest request body accepted, in bytes; larger ones get 413."""
    max_json_depth: int = Field(32, ge=2, le=512, validation_alias="MAX_JSON_DEPTH")
    """Deepest nesting of arrays and objects accepted in a JSON body; deeper ones get 400."""
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=300, validation_alias="HTTP_HEADER_TIMEOUT"
    )
    """Seconds a client may take to send a request's headers before the server hangs up. The
    server (granian) has one timer for this and idle keep-alive: the shorter of the two."""
    keep_alive_timeout_seconds: int = Field(
        5, ge=1, le=300, validation_alias="HTTP_KEEP_ALIVE_TIMEOUT"
    )
    """Seconds an idle keep-alive connection stays open between requests (one timer with
    HTTP_HEADER_TIMEOUT: the shorter of the two applies to both)."""
    body_timeout_seconds: float = Field(30.0, gt=0, le=3600, validation_alias="HTTP_BODY_TIMEOUT")
    """Seconds a client may take to send a whole request body, from its first read; a slower
    one gets 408 and the connection is closed."""
    cors_max_age_seconds: int = Field(600, ge=0, le=86_400, validation_alias="CORS_MAX_AGE")
    """Seconds browsers may cache a CORS preflight answer."""

    @field_validator("trusted_ips", "blocked_ips", "trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> list[IPNetwork]:
        return parse_networks(value)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        origins = split_commas(value)
        for origin in origins or []:
            scheme, sep, host = str(origin).partition("://")
            if scheme not in {"http", "https"} or not sep or not host or "/" in host:
                raise ValueError(f"{origin!r} is not an origin like https://example.com")
        return origins


class PasswordHashSettings(BaseSettings):
    """argon2id cost; the defaults are RFC 9106's second recommended option."""

    model_config = SETTINGS_CONFIG

    memory_kib: int = Field(65_536, ge=8, le=4_194_304, validation_alias="PASSWORD_HASH_MEMORY_KIB")
    """KiB of memory one password hash uses."""
    time_cost: int = Field(3, ge=1, le=100, validation_alias="PASSWORD_HASH_TIME_COST")
    """Passes over that memory per hash."""
    parallelism: int = Field(4, ge=1, le=64, validation_alias="PASSWORD_HASH_PARALLELISM")
    """Lanes (threads) of one hash; PASSWORD_HASH_MEMORY_KIB must be at least 8 per lane."""

    @model_validator(mode="after")
    def _enough_memory_per_lane(self) -> PasswordHashSettings:
        if self.memory_kib < 8 * self.parallelism:
            raise ValueError(
                "PASSWORD_HASH_MEMORY_KIB must be at least 8 x PASSWORD_HASH_PARALLELISM"
            )
        return self
