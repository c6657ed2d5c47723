"""On Redis a decision is one script call whatever the number of quotas, counted by `limits`'
own sliding-window arithmetic in `limits`' own keys, and a Redis that forgot the script (a
restart, SCRIPT FLUSH) is given it again without losing or doubling a count."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis

from chainconsult.infra.ratelimit import Check, SharedRateLimiter
from chainconsult.infra.ratelimit.decide_script import execute_packed
from chainconsult.infra.ratelimit.policies import Quota
from tests.infra.ratelimit.conftest import ScriptRuns
from tests.private_redis import private_redis

pytestmark = [pytest.mark.redis]

MINUTE = Quota("anonymous", parse("20/minute"))
HOUR = Quota("hourly", parse("100/hour"))


@pytest.fixture
def prefix() -> str:
    return f"cctest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def limiter(redis_url: str, prefix: str) -> AsyncIterator[SharedRateLimiter]:
    limiter = SharedRateLimiter(redis_url=redis_url, key_prefix=prefix, penalty_max_seconds=0)
    yield limiter
    await limiter.aclose()


async def test_each_decision_is_one_script_call_for_all_its_quotas(
    scripts_run: ScriptRuns, prefix: str
) -> None:
    limiter = SharedRateLimiter(redis_url=scripts_run.url, key_prefix=prefix, penalty_max_seconds=0)
    checks = [Check(MINUTE, "ip:192.0.2.1", 1), Check(HOUR, "ip:192.0.2.1", 1)]
    try:
        decisions = [await limiter.decide("ip:192.0.2.1", checks) for _ in range(10)]
    finally:
        await limiter.aclose()

    assert all(d.allowed for d in decisions)
    # One script call per decision (made one after another: nothing to batch).
    assert await scripts_run() == 10
    assert [d.states[0].remaining for d in decisions] == list(range(19, 9, -1))
    assert [d.states[1].remaining for d in decisions] == list(range(99, 89, -1))


async def test_counts_are_limits_own_in_limits_own_keys(
    limiter: SharedRateLimiter, redis_url: str, prefix: str
) -> None:
    """What `limits`' public API reads back is what the script counted, and what `limits`
    counts the script sees."""
    key = "ip:192.0.2.2"
    for _ in range(5):
        await limiter.decide(key, [Check(MINUTE, key, 1)])
    storage = RedisStorage(
        f"async+{redis_url}", implementation="redispy", key_prefix=f"{prefix}:ratelimit"
    )
    strategy = SlidingWindowCounterRateLimiter(storage)
    try:
        stats = await strategy.get_window_stats(MINUTE.item, key)
        assert stats.remaining == 15
        assert await strategy.hit(MINUTE.item, key, cost=3)
    finally:
        await storage.bridge.storage.aclose()

    decision = await limiter.decide(key, [Check(MINUTE, key, 1)])
    assert decision.allowed
    assert decision.states[0].remaining == 11


async def test_a_redis_that_forgot_the_script_gets_it_again(prefix: str) -> None:
    key = "ip:192.0.2.3"
    # A Redis of its own: SCRIPT FLUSH on a shared one would hit every other run's scripts.
    with private_redis() as server:
        limiter = SharedRateLimiter(redis_url=server.url, key_prefix=prefix, penalty_max_seconds=0)
        redis = Redis.from_url(server.url)
        try:
            first = await limiter.decide(key, [Check(MINUTE, key, 1)])
            await redis.script_flush()
            second = await limiter.decide(key, [Check(MINUTE, key, 1)])
        finally:
            await limiter.aclose()
            await redis.aclose()

    assert first.allowed
    assert second.allowed
    assert limiter.backend == "redis"
    # Counted once each: the refused first attempt ran nothing.
    assert [first.states[0].remaining, second.states[0].remaining] == [19, 18]


async def test_refused_by_one_quota_names_it_and_reports_every_quota(
    limiter: SharedRateLimiter,
) -> None:
    small = Quota("burst", parse("2/minute"))
    key = "ip:192.0.2.4"
    checks = [Check(small, key, 1), Check(MINUTE, key, 1)]
    decisions = [await limiter.decide(key, checks) for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    refused = decisions[2]
    assert refused.limited_by == small
    assert [s.remaining for s in refused.states] == [0, 17]
    assert refused.retry_after >= 1


async def test_a_call_cut_short_never_leaves_its_reply_to_the_next_command(
    redis_url: str,
) -> None:
    """The decision call goes out on a pooled connection of its own making; a caller that gives
    up while Redis is still to answer (a cancelled request) must not hand that connection back
    with the late reply still to come, or the next command would read it as its own."""
    client = Redis.from_url(redis_url, max_connections=1)
    key = f"cctest-empty-{uuid.uuid4().hex}"
    try:
        waiting = asyncio.ensure_future(execute_packed(client, ("BLPOP", key, "0.3")))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.4)  # the BLPOP's empty answer has arrived by now
        assert await execute_packed(client, ("PING",)) in (b"PONG", "PONG")
    finally:
        await client.aclose()
