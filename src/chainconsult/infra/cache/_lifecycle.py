"""Building the cache from settings, and handing it to request handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.cache._cache import Cache
from chainconsult.infra.resources import resources_of
from chainconsult.infra.settings.platform import PlatformSettings


def build_cache(settings: PlatformSettings, redis: Redis | None, engine: AsyncEngine) -> Cache:
    """The cache for one process, on the process's shared Redis client (``shared_redis``:
    a failed command is final, not retried, and the circuit breaker takes over). Without
    Redis, invalidations travel over PostgreSQL LISTEN/NOTIFY on ``engine``'s database."""
    timeout = settings.redis.socket_timeout_ms / 1000
    return Cache(
        redis=redis if settings.cache.enabled else None,
        key_prefix=settings.redis.key_prefix,
        memory_max_bytes=settings.cache.memory_max_mb * 1024 * 1024,
        enabled=settings.cache.enabled,
        redis_timeout_s=timeout,
        postgres=(settings.database.libpq_url(), engine),
    )


async def request_cache(request: Request) -> Cache:
    # async: FastAPI runs a plain ``def`` dependency on its thread pool, a thread hand-off
    # per request for an attribute read (docs/decisions/0009-no-idle-work-per-request.md).
    return resources_of(request).cache


AppCache = Annotated[Cache, Depends(request_cache)]
"""The process's cache, for handlers that use it directly (most reach it through the
session: see ``cached``)."""
