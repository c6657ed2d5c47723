"""Tiered rate limiting: sliding-window quotas on Redis with a per-process memory fallback."""

from chainconsult.infra.ratelimit.limiter import Check, Decision, SharedRateLimiter
from chainconsult.infra.ratelimit.middleware import Identify, RateLimitMiddleware
from chainconsult.infra.ratelimit.policies import (
    EndpointGroup,
    Identity,
    PolicySet,
    RateLimitPolicy,
)

__all__ = [
    "Check",
    "Decision",
    "EndpointGroup",
    "Identify",
    "Identity",
    "PolicySet",
    "RateLimitMiddleware",
    "RateLimitPolicy",
    "SharedRateLimiter",
]
