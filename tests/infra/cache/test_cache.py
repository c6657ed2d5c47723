"""The two-level cache against a real Redis. Two ``Cache`` objects on one Redis and one key
prefix behave as two processes of one deployment (their own L1, listener and breaker); the
HTTP tests next door do the same with real server processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from chainconsult.infra.cache import INCOHERENT_L1_TTL_S, Cache, CachedQuery, CircuitState
from tests.infra.cache.conftest import CacheFactory
from tests.private_redis import private_redis

pytestmark = pytest.mark.redis


class ExpertCard(BaseModel):
    id: int
    name: str


class ExpertCardV2(BaseModel):
    id: int
    name: str
    rating: float


CARD: CachedQuery[ExpertCard | None] = CachedQuery("test.card", ExpertCard | None, ttl=60)


class CountingQuery:
    """Stands for a database query: returns the current 'row' and counts its runs."""

    def __init__(
        self, name: str = "Ada", delay: float = 0.0, gate: asyncio.Event | None = None
    ) -> None:
        self.name = name
        self.delay = delay
        self.gate = gate
        """When given, each run waits for it to be set (a query the test holds open)."""
        self.runs = 0

    async def __call__(self) -> ExpertCard:
        self.runs += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        return ExpertCard(id=1, name=self.name)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds it took for ``condition`` to hold; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


class _Listener(Protocol):
    _on_status: Callable[[bool], Awaitable[None]]


async def assert_a_stuck_loop_keeps_the_channel(cache: Cache, listener: _Listener) -> None:
    """Two stalls of the whole event loop (as under CPU starvation) leave the invalidation
    channel subscribed: the listener never reports it lost."""
    flips: list[bool] = []
    report = listener._on_status

    async def recorded(subscribed: bool) -> None:
        flips.append(subscribed)
        await report(subscribed)

    listener._on_status = recorded
    for _ in range(2):
        time.sleep(1.6)
        await asyncio.sleep(0.8)

    assert flips == []
    assert cache.subscribed


async def read(cache: Cache, query: CountingQuery, expert_id: int = 1) -> ExpertCard | None:
    return await CARD.get(
        cache, arguments={"id": expert_id}, tags=[f"expert:{expert_id}"], load=query
    )


async def test_second_read_is_a_hit_after_a_miss(make_cache: CacheFactory) -> None:
    cache = await make_cache()
    query = CountingQuery()

    first = await read(cache, query)
    second = await read(cache, query)

    assert first == second == ExpertCard(id=1, name="Ada")
    assert query.runs == 1
    stats = cache.stats()["test.card"]
    assert (stats.misses, stats.l1_hits) == (1, 1)
    assert cache.report()["caches"]["test.card"]["hit_rate"] == 0.5


async def test_another_process_reads_the_value_from_redis_without_querying(
    make_cache: CacheFactory,
) -> None:
    first, second = await make_cache(), await make_cache()
    query = CountingQuery()

    await read(first, query)
    value = await read(second, query)

    assert value == ExpertCard(id=1, name="Ada")
    assert query.runs == 1
    assert second.stats()["test.card"].l2_hits == 1


async def test_concurrent_lookups_go_to_redis_as_one_mget_and_each_gets_its_own_value(
    make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every authenticated request looks its login up in Redis: the lookups of a loop turn are
    one round trip (docs/decisions/0049-cache-lookups-in-batches.md), and none is mixed up
    with another's."""
    first, second = await make_cache(), await make_cache()
    for expert_id in range(20):
        await read(first, CountingQuery(name=f"expert {expert_id}"), expert_id)
    sent: list[int] = []
    mget = Redis.mget

    async def counted(self: Redis, keys: list[str], *args: str) -> list[bytes | None]:
        sent.append(len(keys))
        return await mget(self, keys, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(Redis, "mget", counted)
    query = CountingQuery(name="not from Redis")

    values = await asyncio.gather(*(read(second, query, expert_id) for expert_id in range(20)))

    assert values == [ExpertCard(id=1, name=f"expert {expert_id}") for expert_id in range(20)]
    assert query.runs == 0
    assert second.stats()["test.card"].l2_hits == 20
    # One MGET of each lookup's entry and its two tags (its own and the cache-wide one).
    assert sent == [20 * 3]


async def test_write_is_seen_by_the_next_read_in_every_process(make_cache: CacheFactory) -> None:
    writer, other = await make_cache(), await make_cache()
    await until(lambda: writer.subscribed and other.subscribed)
    query = CountingQuery("Ada")
    assert (await read(writer, query)).name == "Ada"  # type: ignore[union-attr]
    assert (await read(other, query)).name == "Ada"  # type: ignore[union-attr]

    query.name = "Ada Lovelace"  # the write commits...
    await writer.invalidate(["expert:1"])  # ...and its after-commit hook runs

    assert (await read(writer, query)).name == "Ada Lovelace"  # type: ignore[union-attr]
    # The other process's L1 copy goes within a second (in practice, milliseconds)...
    took = await until(lambda: other.memory.get(_l1_key(other)) is None, timeout=1.0)
    assert took < 1.0
    # ...and even before that, Redis would not have served the old value: its token changed.
    assert (await read(other, query)).name == "Ada Lovelace"  # type: ignore[union-attr]


def _l1_key(cache: Cache) -> str:
    return f"test.card:{CARD.key({'id': 1})}"


async def test_value_loaded_before_a_write_is_not_served_after_it(
    make_cache: CacheFactory,
) -> None:
    """A slow read that started before a write and stores its result after the write's
    invalidation must not leave the old row behind (the race key-set tagging loses)."""
    reader, writer = await make_cache(), await make_cache()
    release, entered = asyncio.Event(), asyncio.Event()
    rows = {"name": "old"}

    async def slow_query() -> ExpertCard:
        seen = rows["name"]  # the row as it was when the query ran
        entered.set()
        await release.wait()
        return ExpertCard(id=1, name=seen)

    slow = asyncio.create_task(
        CARD.get(reader, arguments={"id": 1}, tags=["expert:1"], load=slow_query)
    )
    await entered.wait()
    rows["name"] = "new"
    await writer.invalidate(["expert:1"])
    release.set()
    assert (await slow).name == "old"  # type: ignore[union-attr]  # began before the write

    fresh = CountingQuery("new")
    assert (await read(writer, fresh)).name == "new"  # type: ignore[union-attr]
    assert fresh.runs == 1


async def test_hundred_concurrent_misses_run_the_query_once_per_process(
    make_cache: CacheFactory,
) -> None:
    first, second = await make_cache(), await make_cache()
    queries = {id(first): CountingQuery(delay=0.1), id(second): CountingQuery(delay=0.1)}

    results = await asyncio.gather(
        *(read(cache, queries[id(cache)]) for _ in range(100) for cache in (first, second))
    )

    assert all(result == ExpertCard(id=1, name="Ada") for result in results)
    assert queries[id(first)].runs <= 1
    assert queries[id(second)].runs <= 1
    # The Redis lock lets one process load while the other waits for its value.
    assert queries[id(first)].runs + queries[id(second)].runs == 1


async def test_caller_arriving_after_a_write_does_not_join_an_older_load(
    make_cache: CacheFactory,
) -> None:
    cache = await make_cache()
    release, entered = asyncio.Event(), asyncio.Event()
    rows = {"name": "old"}

    async def query() -> ExpertCard:
        seen = rows["name"]
        entered.set()
        await release.wait()
        return ExpertCard(id=1, name=seen)

    before = asyncio.create_task(
        CARD.get(cache, arguments={"id": 1}, tags=["expert:1"], load=query)
    )
    await entered.wait()
    rows["name"] = "new"
    await cache.invalidate(["expert:1"])
    after = asyncio.create_task(CARD.get(cache, arguments={"id": 1}, tags=["expert:1"], load=query))
    await asyncio.sleep(0.02)
    release.set()

    assert (await before).name == "old"  # type: ignore[union-attr]
    assert (await after).name == "new"  # type: ignore[union-attr]


async def test_followers_load_for_themselves_when_the_leader_is_cancelled(
    make_cache: CacheFactory,
) -> None:
    cache = await make_cache()
    query = CountingQuery(gate=asyncio.Event())
    leader = asyncio.create_task(read(cache, query))
    await until(lambda: query.runs == 1)  # the leader's load is out
    follower = asyncio.create_task(read(cache, query))
    # One loop turn: the follower's read reaches the leader's load without awaiting anything.
    await asyncio.sleep(0)
    assert query.runs == 1  # joined it rather than loading

    leader.cancel()
    assert query.gate is not None
    query.gate.set()

    assert await follower == ExpertCard(id=1, name="Ada")
    assert leader.cancelled()
    assert query.runs == 2  # the follower's own load


async def test_a_failing_query_fails_its_waiters_and_is_not_cached(
    make_cache: CacheFactory,
) -> None:
    cache = await make_cache()
    runs = 0

    async def failing() -> ExpertCard:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        raise LookupError("database said no")

    outcomes = await asyncio.gather(
        *(CARD.get(cache, arguments={"id": 9}, load=failing) for _ in range(5)),
        return_exceptions=True,
    )

    assert all(isinstance(outcome, LookupError) for outcome in outcomes)
    assert runs == 1
    assert await CARD.get(cache, arguments={"id": 9}, load=CountingQuery()) is not None


async def test_a_new_result_shape_never_reads_entries_of_the_old_one(
    make_cache: CacheFactory,
) -> None:
    cache = await make_cache()
    old: CachedQuery[ExpertCard] = CachedQuery("test.shape", ExpertCard, ttl=60)
    new: CachedQuery[ExpertCardV2] = CachedQuery("test.shape", ExpertCardV2, ttl=60)

    async def old_row() -> ExpertCard:
        return ExpertCard(id=1, name="Ada")

    async def new_row() -> ExpertCardV2:
        return ExpertCardV2(id=1, name="Ada", rating=4.5)

    await old.get(cache, arguments=[1], load=old_row)
    value = await new.get(cache, arguments=[1], load=new_row)

    assert value.rating == 4.5
    assert old.key([1]) != new.key([1])
    assert CachedQuery("test.shape", ExpertCard, ttl=60, version=2).key([1]) != old.key([1])


async def test_none_results_are_not_stored_when_asked(make_cache: CacheFactory) -> None:
    cache = await make_cache()
    lookups = 0
    token_query: CachedQuery[ExpertCard | None] = CachedQuery(
        "test.token", ExpertCard | None, ttl=60, cache_none=False
    )

    async def unknown() -> ExpertCard | None:
        nonlocal lookups
        lookups += 1
        return None

    for _ in range(3):
        assert await token_query.get(cache, arguments=["made-up"], load=unknown) is None

    assert lookups == 3
    assert len(cache.memory) == 0


async def test_values_are_json_in_redis_not_pickles(
    make_cache: CacheFactory, redis_url: str
) -> None:
    cache = await make_cache()
    await read(cache, CountingQuery("<script>"))
    client = Redis.from_url(redis_url)
    try:
        raw = await client.get(f"{cache.key_prefix}:cache:{_l1_key(cache)}")
    finally:
        await client.aclose()

    assert raw is not None
    assert raw.split(b"\n", 1)[1] == b'{"id":1,"name":"<script>"}'


async def test_without_redis_values_are_served_from_memory(make_cache: CacheFactory) -> None:
    cache = await make_cache(None)
    query = CountingQuery()

    await read(cache, query)
    await read(cache, query)

    assert query.runs == 1
    assert cache.backend == "memory"
    assert cache.channel is None  # nothing to hear: health warns about Redis instead
    await cache.invalidate(["expert:1"])
    await read(cache, query)
    assert query.runs == 2


async def test_killed_redis_falls_back_to_memory_and_comes_back_by_itself(
    make_cache: CacheFactory,
) -> None:
    with private_redis() as server:
        cache = await make_cache(server.url)
        await until(lambda: cache.subscribed)
        query = CountingQuery()
        await read(cache, query)

        server.kill()
        await cache.invalidate(["expert:1"])  # a write while Redis is away
        assert await read(cache, query) == ExpertCard(id=1, name="Ada")
        assert cache.circuit is CircuitState.open
        assert cache.backend == "memory"
        assert not cache.coherent  # health warns (cache:hitRate)

        server.start()  # empty, like a restarted Redis without persistence
        await until(lambda: cache.backend == "redis" and cache.subscribed, timeout=10)
        query.runs = 0
        await read(cache, query)
        await read(cache, query)
        assert query.runs <= 1
        assert cache.report()["redis"]["pending_invalidations"] == 0


@asynccontextmanager
async def hung_redis(make_cache: CacheFactory) -> AsyncIterator[Cache]:
    """A cache (0.5 s Redis timeout) whose private Redis stops answering for the block; its
    circuit has closed again when the block is left."""
    with private_redis() as server:
        cache = await make_cache(server.url, timeout_s=0.5)
        await until(lambda: cache.subscribed)
        server.freeze()
        try:
            yield cache
        finally:
            server.thaw()
        await until(lambda: cache.circuit is CircuitState.closed, timeout=10)


async def test_hung_redis_costs_at_most_one_timeout_then_nothing(
    make_cache: CacheFactory,
) -> None:
    async with hung_redis(make_cache) as cache:
        query = CountingQuery()
        durations = []
        for expert_id in range(20):
            started = time.monotonic()
            await read(cache, query, expert_id)
            durations.append(time.monotonic() - started)

        assert query.runs == 20
        assert cache.circuit is CircuitState.open
        assert durations[0] < 0.5 + 0.25  # the one call that met the hang
        assert max(durations[1:]) < 0.1  # everyone after skips Redis


async def test_lookups_queued_behind_a_hung_batch_do_not_wait_for_a_timeout_of_their_own(
    make_cache: CacheFactory,
) -> None:
    """Lookups that arrive while a batch is at a hung Redis go after it (one MGET at a time):
    once it has timed out and opened the circuit, they fail at once and load."""
    async with hung_redis(make_cache) as cache:
        query = CountingQuery()
        started = time.monotonic()
        first = asyncio.gather(*(read(cache, query, expert_id) for expert_id in range(5)))
        await asyncio.sleep(0.2)  # the first batch is out, waiting for the hung Redis
        later = await asyncio.gather(*(read(cache, query, expert_id) for expert_id in range(5, 10)))
        await first
        elapsed = time.monotonic() - started

        assert later == [ExpertCard(id=1, name="Ada")] * 5
        assert query.runs == 10
        assert cache.circuit is CircuitState.open
        # One timeout in all, not one more for the batch that queued behind it.
        assert elapsed < 0.5 + 0.4


async def test_memory_copies_live_one_second_while_invalidations_cannot_arrive(
    make_cache: CacheFactory,
) -> None:
    with private_redis() as server:
        cache = await make_cache(server.url)
        await until(lambda: cache.subscribed)
        server.kill()
        await read(cache, CountingQuery(), expert_id=2)  # meets the dead Redis: circuit opens
        await until(lambda: cache.circuit is CircuitState.open and not cache.subscribed)
        query = CountingQuery()
        await read(cache, query)
        await read(cache, query)
        assert query.runs == 1

        await asyncio.sleep(INCOHERENT_L1_TTL_S + 0.1)

        await read(cache, query)
        assert query.runs == 2


async def test_a_blocked_event_loop_is_not_taken_for_a_silent_redis(
    make_cache: CacheFactory,
) -> None:
    """An overloaded process answers its Redis PONG late; that must not drop a healthy
    invalidation channel (and with it every L1 copy)."""
    with private_redis() as server:
        cache = await make_cache(server.url)
        await until(lambda: cache.subscribed)
        assert cache._listener is not None
        await assert_a_stuck_loop_keeps_the_channel(cache, cache._listener)
