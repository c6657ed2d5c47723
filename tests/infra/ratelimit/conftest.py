"""Fixtures of these tests."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.edge_support import servers
from tests.private_redis import private_redis

__all__ = ["ScriptRuns", "scripts_run", "servers"]


class ScriptRuns:
    """A Redis of the test's own (``url``) and the script calls (EVALSHA) it has run to
    completion, as its INFO commandstats counts them: what reached Redis, however the client
    sent it. Its own, because the counts are server-wide and other runs share the usual one.
    A call refused with NOSCRIPT (the first on a Redis new to the script) ran nothing and is
    not counted, so the answer does not depend on which test ran first."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = Redis.from_url(url)

    async def __call__(self) -> int:
        stats = await self._client.info("commandstats")
        evalsha = stats.get("cmdstat_evalsha", {})
        return int(evalsha.get("calls", 0)) - int(evalsha.get("failed_calls", 0))

    async def aclose(self) -> None:
        await self._client.aclose()


@pytest.fixture
async def scripts_run() -> AsyncIterator[ScriptRuns]:
    with private_redis() as server:
        runs = ScriptRuns(server.url)
        yield runs
        await runs.aclose()
