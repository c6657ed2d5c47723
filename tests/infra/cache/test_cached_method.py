"""``@cached`` on a repository method: however the arguments are passed (by position, by
keyword, or left to their defaults), the same values are the same cache entry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.cache import Cache, attach_cache, cached


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.runs = 0

    @cached("test.rate", ttl=60)
    async def rate(self, expert: str, currency: str = "USD") -> str:
        self.runs += 1
        return f"{expert}:{currency}:{self.runs}"


@pytest.fixture
async def repository() -> AsyncIterator[Repository]:
    cache = Cache(redis=None, key_prefix="test-cached-method", memory_max_bytes=1 << 20)
    await cache.start()
    sessionmaker = async_sessionmaker[AsyncSession]()
    attach_cache(sessionmaker, cache)
    async with sessionmaker() as session:
        yield Repository(session)
    await cache.close()


async def test_every_way_of_passing_the_same_values_hits_one_entry(
    repository: Repository,
) -> None:
    first = await repository.rate("ada", "USD")
    assert first == "ada:USD:1"
    assert await repository.rate("ada") == first
    assert await repository.rate(expert="ada") == first
    assert await repository.rate("ada", currency="USD") == first
    assert await repository.rate(currency="USD", expert="ada") == first
    assert repository.runs == 1


async def test_other_values_are_other_entries(repository: Repository) -> None:
    assert await repository.rate("ada", "EUR") == "ada:EUR:1"
    assert await repository.rate("grace") == "grace:USD:2"
    assert await repository.rate("ada", "USD") == "ada:USD:3"
    assert await repository.rate(expert="ada", currency="EUR") == "ada:EUR:1"
    assert repository.runs == 3
