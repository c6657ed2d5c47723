"""argon2 hashing: right answers, and never more hashes at once than the process has cores."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from chainconsult.infra.security.passwords import (
    HASH_CONCURRENCY,
    HASH_NICENESS,
    HashingBusy,
    _on_hashing_thread,
    hashing_limiter,
    passwords,
)


async def test_a_burst_of_logins_runs_at_most_one_hash_per_core() -> None:
    stored = await passwords.hash("correct horse battery staple")
    limiter = hashing_limiter()
    burst = [
        asyncio.create_task(
            passwords.verify(stored, "correct horse battery staple" if i % 2 else "no")
        )
        for i in range(HASH_CONCURRENCY * 4)
    ]
    most_borrowed = most_waiting = 0
    while not all(task.done() for task in burst):
        stats = limiter.statistics()
        most_borrowed = max(most_borrowed, stats.borrowed_tokens)
        most_waiting = max(most_waiting, stats.tasks_waiting)
        await asyncio.sleep(0.005)

    results = [task.result() for task in burst]
    assert results == [bool(i % 2) for i in range(HASH_CONCURRENCY * 4)]
    assert most_borrowed == HASH_CONCURRENCY
    assert most_waiting > 0
    assert await passwords.verify(None, "anything") is False


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux keeps a nice value per thread")
async def test_hashes_run_at_a_lower_cpu_priority_than_the_event_loop() -> None:
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_niceness = niceness()
    hashing_niceness = await _on_hashing_thread(niceness, None)

    assert hashing_niceness == min(19, loop_niceness + HASH_NICENESS)
    assert niceness() == loop_niceness


async def test_a_hash_that_cannot_start_within_its_wait_is_refused_at_once() -> None:
    limiter = hashing_limiter()
    holders = [object() for _ in range(HASH_CONCURRENCY)]
    for holder in holders:
        await limiter.acquire_on_behalf_of(holder)
    try:
        with pytest.raises(HashingBusy):
            await passwords.verify(None, "anything", wait_seconds=0.01)
    finally:
        for holder in holders:
            limiter.release_on_behalf_of(holder)

    assert limiter.borrowed_tokens == 0
    assert await passwords.verify(None, "anything", wait_seconds=0.01) is False
