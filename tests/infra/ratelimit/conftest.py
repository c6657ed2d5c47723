"""Fixtures of these tests."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from tests.edge_support import servers

__all__ = ["scripts_run", "servers"]


@pytest.fixture
async def scripts_run(redis_url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """Script calls (EVALSHA) Redis has run since the fixture was made, as its own
    INFO commandstats counts them: what reached Redis, however the client sent it."""
    client = Redis.from_url(redis_url)

    async def calls() -> int:
        stats = await client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    before = await calls()

    async def since() -> int:
        return await calls() - before

    yield since
    await client.aclose()
