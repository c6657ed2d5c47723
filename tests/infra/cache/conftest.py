from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chainconsult.infra.cache import Cache
from tests.conftest import REDIS_PREFIX

CacheFactory = Callable[..., Awaitable[Cache]]


@pytest.fixture
async def make_cache(redis_url: str) -> AsyncIterator[CacheFactory]:
    """Caches that share one Redis and one key prefix, as processes of one deployment do.
    Each test gets its own prefix, so no test sees another's keys. The Redis timeout is
    generous by default: on a loaded machine a slow reply must not open the circuit of a test
    that is about the Redis path (the fault tests set their own)."""
    prefix = f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}"
    made: list[Cache] = []
    clients: list[Redis] = []

    async def make(
        url: str | None = redis_url, *, timeout_s: float = 2.0, max_bytes: int = 1 << 20
    ) -> Cache:
        client = (
            Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            if url is not None
            else None
        )
        if client is not None:
            clients.append(client)
        cache = Cache(
            redis=client, key_prefix=prefix, memory_max_bytes=max_bytes, redis_timeout_s=timeout_s
        )
        await cache.start()
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()
    for client in clients:
        await client.aclose()
