"""Building the cache from settings, and handing it to request handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from chainconsult.infra.cache._cache import Cache
from chainconsult.infra.redis_client import connection_options
from chainconsult.infra.settings.platform import PlatformSettings


def build_cache(settings: PlatformSettings) -> Cache:
    """The cache for one process. It has its own Redis client: redis-py retries a failed
    command ten times with backoff by default, which would hold a request for seconds on a dead
    Redis; here a failure is final and the circuit breaker takes over."""
    redis: Redis | None = None
    timeout = settings.redis.socket_timeout_ms / 1000
    if settings.redis.url is not None and settings.cache.enabled:
        redis = Redis.from_url(
            settings.redis.url.get_secret_value(),
            client_name="chainconsult-cache",
            **connection_options(timeout),
        )
    return Cache(
        redis=redis,
        key_prefix=settings.redis.key_prefix,
        memory_max_bytes=settings.cache.memory_max_mb * 1024 * 1024,
        enabled=settings.cache.enabled,
        redis_timeout_s=timeout,
    )


async def request_cache(request: Request) -> Cache:
    # async: FastAPI runs a plain ``def`` dependency on its thread pool, a thread hand-off
    # per request for an attribute read (docs/decisions/0009-no-idle-work-per-request.md).
    cache: Cache = request.app.state.cache
    return cache


AppCache = Annotated[Cache, Depends(request_cache)]
"""The process's cache, for handlers that use it directly (most reach it through the
session: see ``cached``)."""
