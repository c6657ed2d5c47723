"""Cross-process L1 invalidation without Redis, over PostgreSQL LISTEN/NOTIFY (_postgres.py,
decision 0048). Two ``Cache`` objects on the test database and one key prefix behave as two
processes of a deployment without Redis: their own L1 and their own listening connection."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chainconsult.config import Settings
from chainconsult.infra.cache import ALL_TAG, INCOHERENT_L1_TTL_S, Cache
from chainconsult.infra.cache._postgres import NOTIFY_MAX_BYTES, notify_payload
from chainconsult.process import open_resources
from tests.conftest import REDIS_PREFIX
from tests.infra.cache.test_cache import (
    CARD,
    CountingQuery,
    assert_a_stuck_loop_keeps_the_channel,
    read,
    until,
)

PgCacheFactory = Callable[..., Awaitable[Cache]]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
async def make_pg_cache(database_url: str) -> AsyncIterator[PgCacheFactory]:
    """Started caches without Redis, sharing the test database and one key prefix (and so one
    channel, of this test alone)."""
    prefix = f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}"
    made: list[Cache] = []
    engines: list[AsyncEngine] = []

    async def make(*, notify_url: str = database_url) -> Cache:
        engine = create_async_engine(notify_url, pool_size=2)
        engines.append(engine)
        cache = Cache(
            redis=None,
            key_prefix=prefix,
            memory_max_bytes=1 << 20,
            postgres=(_libpq(database_url), engine),
        )
        await cache.start()
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()
    for engine in engines:
        await engine.dispose()


def _key(expert_id: int = 1) -> str:
    return f"{CARD.name}:{CARD.key({'id': expert_id})}"


def _lifetime(cache: Cache, expert_id: int = 1) -> float:
    """Seconds the L1 entry of ``expert_id`` has left (on the monotonic clock L1 runs on)."""
    entry = cache.memory.get(_key(expert_id), may_refresh=False)
    assert entry is not None
    return entry.expires - time.monotonic()


async def test_a_write_in_one_process_drops_the_copy_in_another_at_once(
    make_pg_cache: PgCacheFactory,
) -> None:
    writer, other = await make_pg_cache(), await make_pg_cache()
    await until(lambda: writer.subscribed and other.subscribed)
    query = CountingQuery("Ada")
    await read(writer, query)
    await read(other, query)
    assert other.memory.get(_key(), may_refresh=False) is not None

    query.name = "Ada Lovelace"
    await writer.invalidate(["expert:1"])

    took = await until(lambda: other.memory.get(_key(), may_refresh=False) is None, timeout=1.0)
    assert took < INCOHERENT_L1_TTL_S / 2  # the message, not the 1 s bound
    card = await read(other, query)
    assert card is not None
    assert card.name == "Ada Lovelace"
    assert other.report()["invalidation"] == {
        "channel": "postgres",
        "subscribed": True,
        "coherent": True,
        "pending": 0,
    }
    assert other.report()["redis"]["configured"] is False


async def test_memory_copies_keep_their_whole_ttl_while_the_channel_is_subscribed(
    make_pg_cache: PgCacheFactory,
) -> None:
    cache = await make_pg_cache()
    await until(lambda: cache.subscribed)

    await read(cache, CountingQuery())

    assert cache.coherent
    assert _lifetime(cache) > CARD.ttl - 5  # not cut to INCOHERENT_L1_TTL_S


async def test_a_lost_listening_connection_clears_memory_and_bounds_it_until_back(
    make_pg_cache: PgCacheFactory, database_url: str
) -> None:
    cache = await make_pg_cache()
    await until(lambda: cache.subscribed)
    await read(cache, CountingQuery(), expert_id=1)
    listener = cache._pg
    assert listener is not None
    pid = listener.backend_pid
    seen: list[tuple[bool, int, float]] = []
    report = listener._on_status

    async def recorded(subscribed: bool) -> None:
        await report(subscribed)
        if subscribed:
            seen.append((True, len(cache.memory), 0.0))
            return
        # While the channel is down, a new copy lives a second at most.
        await read(cache, CountingQuery(), expert_id=2)
        seen.append((False, len(cache.memory), _lifetime(cache, expert_id=2)))

    listener._on_status = recorded
    with psycopg.connect(_libpq(database_url), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    await until(lambda: len(seen) == 2 and cache.subscribed, timeout=10)
    (lost, entries_when_lost, lifetime), (back, _, _) = seen
    assert (lost, back) == (False, True)
    assert cache.memory.get(_key(1), may_refresh=False) is None  # cleared on the loss
    assert entries_when_lost == 1  # only the copy read after the loss
    assert 0 < lifetime <= INCOHERENT_L1_TTL_S
    assert listener.backend_pid != pid
    await read(cache, CountingQuery(), expert_id=3)
    assert _lifetime(cache, expert_id=3) > CARD.ttl - 5  # whole TTL once back


async def test_a_process_ignores_its_own_messages(make_pg_cache: PgCacheFactory) -> None:
    cache = await make_pg_cache()
    await until(lambda: cache.subscribed)
    listener = cache._pg
    assert listener is not None
    heard: list[str] = []
    handle = listener._on_message

    def recorded(origin: str, tags: list[str]) -> None:
        heard.append(origin)
        handle(origin, tags)

    listener._on_message = recorded
    query = CountingQuery()
    await read(cache, query)

    await listener.publish(["expert:1"])  # what invalidate() sends, without the local drop

    await until(lambda: heard == [cache.origin])
    assert cache.memory.get(_key(), may_refresh=False) is not None
    await read(cache, query)
    assert query.runs == 1


async def test_too_many_tags_for_one_notify_drop_everything_elsewhere(
    make_pg_cache: PgCacheFactory,
) -> None:
    writer, other = await make_pg_cache(), await make_pg_cache()
    await until(lambda: writer.subscribed and other.subscribed)
    for expert_id in (1, 2):
        await read(other, CountingQuery(), expert_id=expert_id)
    tags = [f"project:{number:06d}" for number in range(1000)]
    assert len(notify_payload(tags, origin=writer.origin)) <= NOTIFY_MAX_BYTES
    assert ALL_TAG in notify_payload(tags, origin=writer.origin)

    await writer.invalidate(tags)  # none of them is an expert's

    await until(lambda: len(other.memory) == 0, timeout=1.0)


async def test_a_failed_notify_is_sent_again_and_never_raises(
    make_pg_cache: PgCacheFactory, database_url: str
) -> None:
    """The NOTIFY's pool cannot reach the database: the write's caller sees nothing, the tags
    reach the other process over the listener's own connection within a second, and until
    then the writer does not trust its own memory beyond a second either."""
    unreachable = make_url(database_url).set(host="127.0.0.1", port=1)
    writer = await make_pg_cache(notify_url=unreachable.render_as_string(hide_password=False))
    other = await make_pg_cache()
    await until(lambda: writer.subscribed and other.subscribed)
    await read(other, CountingQuery())

    await writer.invalidate(["expert:1"])

    assert not writer.coherent
    assert writer.report()["invalidation"]["pending"] == 1
    await until(lambda: other.memory.get(_key(), may_refresh=False) is None, timeout=1.0)
    await until(lambda: writer.coherent, timeout=1.0)


async def test_a_blocked_event_loop_is_not_taken_for_a_silent_database(
    make_pg_cache: PgCacheFactory,
) -> None:
    """An overloaded process reads the answer to its ping late; that must not drop a healthy
    channel (and with it every L1 copy)."""
    cache = await make_pg_cache()
    await until(lambda: cache.subscribed)
    assert cache._pg is not None
    await assert_a_stuck_loop_keeps_the_channel(cache, cache._pg)


async def test_a_server_process_without_redis_listens_on_postgres_until_it_closes(
    settings: Settings, database_url: str
) -> None:
    async with open_resources(settings) as resources:
        cache = resources.cache
        assert cache.channel == "postgres"
        await until(lambda: cache.subscribed and cache.coherent, timeout=10)
        assert cache._pg is not None
        pid = cache._pg.backend_pid
    with psycopg.connect(_libpq(database_url), autocommit=True) as admin:

        def backend_gone() -> bool:
            left = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            return left.fetchone() == (0,)

        # The server's backend exits a moment after the client closed its end; a connection
        # left open would stay.
        await until(backend_gone, timeout=5)
