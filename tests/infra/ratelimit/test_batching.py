"""Rate-limit decisions of concurrent requests go to Redis together, as one script call, and
each request still gets exactly its own answer: counts stay exact and shared."""

from __future__ import annotations

import asyncio
import contextvars
import uuid

import pytest
from limits import parse

from chainconsult.infra.batching import RoundTripBatcher
from chainconsult.infra.ratelimit import Check, Decision, SharedRateLimiter
from chainconsult.infra.ratelimit.limiter import MAX_DECISIONS_PER_CALL
from chainconsult.infra.ratelimit.policies import Quota
from tests.infra.ratelimit.conftest import ScriptRuns


async def test_calls_of_one_loop_turn_are_one_send_and_keep_their_results() -> None:
    batches: list[list[int]] = []

    async def send(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        await asyncio.sleep(0)
        return [ValueError(f"odd {item}") if item == 7 else item * 10 for item in items]

    batcher: RoundTripBatcher[int, int] = RoundTripBatcher(send)
    answers = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
    later = await batcher.submit(11)

    assert batches == [list(range(10)), [11]]
    assert answers[:7] == [0, 10, 20, 30, 40, 50, 60]
    # An item's own error answers that item only, in its place.
    assert isinstance(answers[7], ValueError)
    assert answers[8:] == [80, 90]
    assert later == 110


async def test_calls_made_while_a_batch_is_out_wait_for_it_and_then_go_together() -> None:
    release = asyncio.Event()
    batches: list[list[int]] = []
    out = most_out = 0

    async def send(items: list[int]) -> list[int | Exception]:
        nonlocal out, most_out
        batches.append(items)
        out += 1
        most_out = max(most_out, out)
        if len(batches) == 1:
            await release.wait()
        out -= 1
        return [item * 10 for item in items]

    batcher: RoundTripBatcher[int, int] = RoundTripBatcher(send)
    first = asyncio.ensure_future(batcher.submit(0))
    for _ in range(3):
        await asyncio.sleep(0)
    assert batches == [[0]]
    # Asked in two later loop turns while the first batch is out: nothing more is sent yet.
    second = [asyncio.ensure_future(batcher.submit(item)) for item in (1, 2)]
    await asyncio.sleep(0)
    third = asyncio.ensure_future(batcher.submit(3))
    for _ in range(5):
        await asyncio.sleep(0)
    assert batches == [[0]]

    release.set()
    assert await first == 0
    assert await asyncio.gather(*second, third) == [10, 20, 30]
    assert batches == [[0], [1, 2, 3]]
    assert most_out == 1
    await batcher.aclose()


_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="none")


async def test_each_batch_runs_in_the_context_of_its_first_caller() -> None:
    """Its span belongs to that caller's trace, also for a batch flushed when an earlier one
    came back (once in the context of the first batch's caller, long finished)."""
    release = asyncio.Event()
    seen: list[str] = []

    async def send(items: list[int]) -> list[int | Exception]:
        seen.append(_CALLER.get())
        if len(seen) == 1:
            await release.wait()
        return items

    batcher: RoundTripBatcher[int, int] = RoundTripBatcher(send)

    async def call(item: int) -> int:
        _CALLER.set(f"caller {item}")
        return await batcher.submit(item)

    first = asyncio.ensure_future(call(0))
    for _ in range(3):
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(call(item)) for item in (1, 2)]
    for _ in range(3):
        await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(first, *later) == [0, 1, 2]
    assert seen == ["caller 0", "caller 1"]


async def test_a_failed_send_fails_every_waiting_call_with_its_own_exception() -> None:
    async def send(items: list[int]) -> list[int | Exception]:
        raise ConnectionError("lost")

    batcher: RoundTripBatcher[int, int] = RoundTripBatcher(send)
    answers = await asyncio.gather(
        *(asyncio.wait_for(batcher.submit(i), 2) for i in range(3)), return_exceptions=True
    )

    assert [type(answer) for answer in answers] == [ConnectionError] * 3
    assert len({id(answer) for answer in answers}) == 3


async def test_a_send_that_breaks_its_promise_leaves_no_call_waiting() -> None:
    """A fault injected in the send itself (a reply of the wrong length): every call of the
    batch hears of it at once, none waits forever."""

    async def send(items: list[int]) -> list[int | Exception]:
        return []

    batcher: RoundTripBatcher[int, int] = RoundTripBatcher(send)
    answers = await asyncio.gather(
        *(asyncio.wait_for(batcher.submit(i), 2) for i in range(3)), return_exceptions=True
    )

    assert [type(answer) for answer in answers] == [RuntimeError] * 3


async def decide_at_once(redis_url: str, quota: Quota, times: int) -> list[Decision]:
    """``times`` decisions for one caller against ``quota``, all asked in one loop turn, on a
    limiter of its own (keys no other test sees)."""
    limiter = SharedRateLimiter(
        redis_url=redis_url, key_prefix=f"cctest-{uuid.uuid4().hex[:10]}", penalty_max_seconds=0
    )
    try:
        decisions = await asyncio.gather(
            *(
                limiter.decide("ip:192.0.2.7", [Check(quota, "ip:192.0.2.7", 1)])
                for _ in range(times)
            )
        )
        assert limiter.backend == "redis"
    finally:
        await limiter.aclose()
    return list(decisions)


@pytest.mark.redis
async def test_concurrent_decisions_on_redis_are_one_call_and_count_exactly(
    scripts_run: ScriptRuns,
) -> None:
    quota = Quota("anonymous", parse("30/minute"))
    decisions = await decide_at_once(scripts_run.url, quota, 40)

    # One script call for the forty.
    assert await scripts_run() == 1
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 30
    assert sorted(d.states[0].remaining for d in allowed) == list(range(30))
    assert all(d.limited_by == quota for d in decisions if not d.allowed)


@pytest.mark.redis
async def test_a_batch_larger_than_one_call_takes_is_split_and_still_exact(
    scripts_run: ScriptRuns,
) -> None:
    quota = Quota("anonymous", parse("500/minute"))
    decisions = await decide_at_once(scripts_run.url, quota, 2 * MAX_DECISIONS_PER_CALL + 88)

    assert await scripts_run() == 3
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 500
    assert sorted(d.states[0].remaining for d in allowed) == list(range(500))


async def test_decisions_queued_behind_a_batch_that_found_redis_gone_skip_redis(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    """Nothing listens on the port: the batch that is out fails, and the decisions that waited
    behind it are decided in memory at once, without a second attempt on Redis."""
    from chainconsult.infra.ratelimit import limiter as limiter_module

    attempts: list[tuple[object, ...]] = []
    execute = limiter_module.execute_packed

    async def counted(client: object, command: tuple[object, ...]) -> object:
        attempts.append(command)
        return await execute(client, command)

    monkeypatch.setattr(limiter_module, "execute_packed", counted)
    limiter = SharedRateLimiter(
        redis_url=f"redis://127.0.0.1:{unused_tcp_port}/0", key_prefix="cctest", probe_interval=60
    )
    quota = Quota("anonymous", parse("30/minute"))
    check = [Check(quota, "ip:192.0.2.8", 1)]
    try:
        first = asyncio.ensure_future(limiter.decide("ip:192.0.2.8", check))
        await asyncio.sleep(0)
        queued = [asyncio.ensure_future(limiter.decide("ip:192.0.2.8", check)) for _ in range(4)]
        decisions = await asyncio.wait_for(asyncio.gather(first, *queued), 5)
    finally:
        await limiter.aclose()

    assert len(attempts) == 1
    assert limiter.backend == "memory"
    assert [d.allowed for d in decisions] == [True] * 5
    assert sorted(d.states[0].remaining for d in decisions) == [25, 26, 27, 28, 29]
