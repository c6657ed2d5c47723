"""The rate-limit group of the settings: a limit per caller kind."""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class RateLimitSettings(BaseSettings):
    """Limits are `limits` strings: a count per second, minute, hour, day, month or year
    (`120/minute`, `10 per 5 seconds`), several separated by `;`."""

    model_config = SETTINGS_CONFIG

    anonymous: str = Field("120/minute", validation_alias="RATE_LIMIT_ANONYMOUS")
    """Limit per client IP for callers without a login."""
    free: str = Field("300/minute", validation_alias="RATE_LIMIT_FREE")
    """Limit per account on the free plan."""
    pro: str = Field("600/minute", validation_alias="RATE_LIMIT_PRO")
    """Limit per account on the pro plan."""
    enterprise: str = Field("3000/minute", validation_alias="RATE_LIMIT_ENTERPRISE")
    """Limit per account on the enterprise plan."""
    auth: str = Field("10/minute", validation_alias="RATE_LIMIT_AUTH")
    """Limit per client IP on login and registration."""
    write_cost: int = Field(5, ge=1, le=1000, validation_alias="RATE_LIMIT_WRITE_COST")
    """Units a POST/PUT/PATCH/DELETE takes from the caller's quota (a read takes 1)."""
    penalty_max_seconds: int = Field(
        900, ge=0, le=86_400, validation_alias="RATE_LIMIT_PENALTY_MAX"
    )
    """Seconds of the longest penalty for a caller who keeps exceeding a limit (0: no
    penalty)."""
    redis_probe_seconds: float = Field(
        2.0, gt=0, le=300, validation_alias="RATE_LIMIT_REDIS_PROBE_INTERVAL"
    )
    """Seconds between the background probes that check, while Redis is down, whether it is
    back."""

    @field_validator("anonymous", "free", "pro", "enterprise", "auth")
    @classmethod
    def _limits_syntax(cls, value: str) -> str:
        # The `limits` grammar: "<count>/<unit>" or "<count> per <n> <unit>", `;`-separated.
        item = r"\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*"
        if not re.fullmatch(f"{item}(;{item})*", value):
            raise ValueError(f"{value!r} is not a limit like '120/minute'")
        return value
