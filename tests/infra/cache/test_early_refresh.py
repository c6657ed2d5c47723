"""An L1 entry near its deadline is reloaded by one caller while the others are still answered
from it (infra/cache/_memory.py, decision 0046): a burst of entries loaded together no longer
runs out together with every caller of each waiting for its reload."""

from __future__ import annotations

import asyncio
import logging

import pytest

from chainconsult.infra.cache import INCOHERENT_L1_TTL_S
from chainconsult.infra.cache._memory import REFRESH_AFTER
from tests.infra.cache.conftest import CacheFactory
from tests.infra.cache.test_cache import CARD, CountingQuery, read, until

DUE_S = INCOHERENT_L1_TTL_S * REFRESH_AFTER + 0.05
"""Past the reload point of a memory-only entry, before its deadline."""


async def test_a_due_entry_is_reloaded_by_one_caller_while_the_others_are_answered_from_it(
    make_cache: CacheFactory,
) -> None:
    cache = await make_cache(None)  # memory only: entries live INCOHERENT_L1_TTL_S
    await read(cache, CountingQuery(name="Ada"))
    await asyncio.sleep(DUE_S)
    gate = asyncio.Event()
    reload = CountingQuery(name="Grace", gate=gate)

    refresher = asyncio.create_task(read(cache, reload))
    await until(lambda: reload.runs == 1)
    meanwhile = [await read(cache, reload) for _ in range(3)]
    gate.set()
    refreshed = await refresher

    assert [card.name for card in meanwhile if card is not None] == ["Ada"] * 3
    assert refreshed is not None
    assert refreshed.name == "Grace"
    assert reload.runs == 1
    after = await read(cache, reload)
    assert after is not None
    assert after.name == "Grace"
    assert reload.runs == 1


async def test_the_shortcut_leaves_a_due_entry_to_the_route_and_is_answered_while_it_reloads(
    make_cache: CacheFactory,
) -> None:
    cache = await make_cache(None)
    await read(cache, CountingQuery(name="Ada"))
    key = CARD.key({"id": 1})
    assert cache.peek(name=CARD.name, key=key) is not None
    await asyncio.sleep(DUE_S)

    due = cache.peek(name=CARD.name, key=key)
    gate = asyncio.Event()
    reload = CountingQuery(name="Grace", gate=gate)
    refresher = asyncio.create_task(read(cache, reload))
    await until(lambda: reload.runs == 1)
    reloading = cache.peek(name=CARD.name, key=key)
    gate.set()
    await refresher
    reloaded = cache.peek(name=CARD.name, key=key)

    assert due is None
    assert reloading is not None
    assert b"Ada" in reloading.payload
    assert reloaded is not None
    assert b"Grace" in reloaded.payload


async def test_a_failed_reload_answers_from_the_entry_and_the_next_caller_reloads(
    make_cache: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cache = await make_cache(None)
    await read(cache, CountingQuery(name="Ada"))
    await asyncio.sleep(DUE_S)
    attempts = 0

    async def failing() -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("database away")

    with caplog.at_level(logging.WARNING):
        kept = await CARD.get(cache, arguments={"id": 1}, tags=["expert:1"], load=failing)
    reload = CountingQuery(name="Grace")
    reloaded = await read(cache, reload)

    assert attempts == 1
    assert kept is not None
    assert kept.name == "Ada"
    assert "cache_reload_failed" in caplog.text
    # Still before the entry's deadline: the next caller took the reload up again.
    assert reload.runs == 1
    assert reloaded is not None
    assert reloaded.name == "Grace"


async def test_a_failed_load_without_a_live_entry_raises(make_cache: CacheFactory) -> None:
    cache = await make_cache(None)

    async def failing() -> None:
        raise RuntimeError("database away")

    with pytest.raises(RuntimeError, match="database away"):
        await CARD.get(cache, arguments={"id": 1}, tags=["expert:1"], load=failing)
    # An invalidated entry is no answer either.
    await read(cache, CountingQuery(name="Ada"))
    await cache.invalidate(["expert:1"])
    with pytest.raises(RuntimeError, match="database away"):
        await CARD.get(cache, arguments={"id": 1}, tags=["expert:1"], load=failing)
