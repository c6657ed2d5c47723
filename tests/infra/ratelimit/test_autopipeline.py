"""Rate-limit commands of concurrent requests go to Redis in one pipeline, and each request
still gets exactly its own replies: counts stay exact and shared."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from limits import parse
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from chainconsult.infra.ratelimit import Check, SharedRateLimiter
from chainconsult.infra.ratelimit.autopipeline import RedisAutoPipeline
from chainconsult.infra.ratelimit.policies import Quota

pytestmark = [pytest.mark.redis]


async def test_concurrent_requests_share_one_pipeline_and_keep_their_replies(
    redis_url: str,
) -> None:
    client = Redis.from_url(redis_url)
    batches = 0

    def counted() -> Any:
        nonlocal batches
        batches += 1
        return client

    key = f"cctest-autopipe-{uuid.uuid4().hex}"
    text_key = f"{key}-text"
    await client.set(text_key, "not a number")
    pipeline = RedisAutoPipeline(counted)
    try:
        replies = await asyncio.gather(
            *(pipeline.execute([("INCR", key), ("GET", key)]) for _ in range(50)),
            pipeline.execute([("INCR", text_key), ("INCR", key)]),
        )
    finally:
        await client.delete(key, text_key)
        await client.aclose()

    assert batches == 1
    # Each request's two commands ran back to back, in order, with nothing between them.
    assert sorted(incr for incr, _ in replies[:50]) == list(range(1, 51))
    assert all(int(got) == incr for incr, got in replies[:50])
    # A failing command answers its own request only, in its place.
    error, after = replies[50]
    assert isinstance(error, ResponseError)
    assert after == 51


async def test_a_lost_connection_fails_every_waiting_request() -> None:
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    pipeline = RedisAutoPipeline(lambda: client)
    try:
        results = await asyncio.gather(
            *(pipeline.execute([("PING",)]) for _ in range(5)), return_exceptions=True
        )
    finally:
        await client.aclose()

    assert len(results) == 5
    assert all(isinstance(result, RedisConnectionError) for result in results), results


async def test_concurrent_decisions_on_redis_count_exactly(redis_url: str) -> None:
    limiter = SharedRateLimiter(
        redis_url=redis_url, key_prefix=f"cctest-{uuid.uuid4().hex[:10]}", penalty_max_seconds=0
    )
    quota = Quota("anonymous", parse("30/minute"))
    try:
        decisions = await asyncio.gather(
            *(limiter.decide("ip:192.0.2.7", [Check(quota, "ip:192.0.2.7", 1)]) for _ in range(40))
        )
        assert limiter.backend == "redis"
    finally:
        await limiter.aclose()

    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 30
    assert sorted(d.states[0].remaining for d in allowed) == list(range(30))
    assert all(d.limited_by == quota for d in decisions if not d.allowed)


async def test_a_failure_while_queueing_reaches_every_waiting_request() -> None:
    """A fault injected where the commands are queued (before anything is sent): every request
    of the batch hears it at once, each with its own exception, and none waits forever."""

    class BrokenClient:
        def pipeline(self, transaction: bool) -> None:
            raise RuntimeError("cannot queue")

    pipeline = RedisAutoPipeline(BrokenClient)
    answers = await asyncio.gather(
        *(asyncio.wait_for(pipeline.execute([("PING",)]), 2) for _ in range(3)),
        return_exceptions=True,
    )

    assert [type(answer) for answer in answers] == [RuntimeError] * 3
    assert len({id(answer) for answer in answers}) == 3
