"""A burst of requests makes every Redis client of the platform open connections by the dozen:
each opening must cost a round trip, not a read of the installed package's metadata (2-3 ms of
the event loop's CPU each with redis-py 8) nor extra commands before the first one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.utils
from redis.asyncio import Redis

from chainconsult.infra.ratelimit.limiter import SharedRateLimiter
from chainconsult.infra.resources import shared_redis
from tests.conftest import make_settings

pytestmark = pytest.mark.redis

AT_ONCE = 20


async def _open_connections(client: Redis) -> int:
    """Run AT_ONCE commands at once (each takes a connection of its own); the pool's size."""
    await asyncio.gather(*(client.execute_command("PING") for _ in range(AT_ONCE)))
    pool: Any = client.connection_pool
    return len(pool._available_connections) + len(pool._in_use_connections)


async def test_platform_redis_clients_open_connections_without_reading_package_metadata(
    redis_url: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []

    def counted_version() -> str:
        reads.append("redis")
        return "0"

    # Counts the reads; redis-py looks the function up when it builds a connection.
    monkeypatch.setattr(redis.utils, "get_lib_version", counted_version)
    settings = make_settings(database_url, tmp_path, REDIS_URL=redis_url)
    # The process's shared client (cache, live updates, monitoring and, through its pool,
    # the rate limiter), and a rate limiter with a client of its own (the job worker's).
    shared = shared_redis(settings.redis)
    limiter = SharedRateLimiter(redis_url=redis_url, key_prefix="test-redis-client")
    assert shared is not None
    assert limiter._redis is not None
    clients: dict[str, Redis] = {
        "shared": shared,
        "rate limiter": limiter._redis.bridge.get_connection(),
    }
    try:
        for name, client in clients.items():
            assert await _open_connections(client) == AT_ONCE, name
        assert reads == []
    finally:
        await shared.aclose()
        await limiter.aclose()
