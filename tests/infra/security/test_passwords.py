"""argon2 hashing: right answers, never more hashes at once than the process has cores, and the
cost PASSWORD_HASH_* set (RFC 9106's unless changed; the tests run at the cheapest)."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chainconsult.app import create_app
from chainconsult.config import ConfigError, PasswordHashSettings, load_settings
from chainconsult.infra.security.passwords import (
    HASH_CONCURRENCY,
    HASH_NICENESS,
    HashingBusy,
    _on_hashing_thread,
    hashing_limiter,
    passwords,
    use_parameters,
)
from tests.conftest import TEST_PASSWORD_HASH, make_settings
from tests.helpers import login, register, serving


@pytest.fixture
def default_cost(monkeypatch: pytest.MonkeyPatch) -> Iterator[PasswordHashSettings]:
    """The settings as a deployment that sets no PASSWORD_HASH_* has them, in use; the
    tests' cheap cost is put back afterwards."""
    for name in TEST_PASSWORD_HASH:
        monkeypatch.delenv(name)
    defaults = PasswordHashSettings()
    use_parameters(defaults)
    yield defaults
    monkeypatch.undo()
    use_parameters(PasswordHashSettings())


def _argon2_fields(encoded: str) -> tuple[str, str, int, int]:
    """Variant, parameters, salt and tag lengths (bytes) of an encoded argon2 hash."""
    _, variant, _version, parameters, salt, tag = encoded.split("$")

    def length(b64: str) -> int:
        return len(base64.b64decode(b64 + "=" * (-len(b64) % 4)))

    return variant, parameters, length(salt), length(tag)


async def test_the_default_cost_is_rfc_9106s_second_recommended_option(
    default_cost: PasswordHashSettings,
) -> None:
    assert (default_cost.memory_kib, default_cost.time_cost, default_cost.parallelism) == (
        65_536,
        3,
        4,
    )
    stored = await passwords.hash("correct horse battery staple")

    # RFC 9106 4: argon2id, t=3, p=4, 64 MiB, a 128-bit salt and a 256-bit tag.
    assert _argon2_fields(stored) == ("argon2id", "m=65536,t=3,p=4", 16, 32)
    assert await passwords.verify(stored, "correct horse battery staple")


async def test_registration_hashes_at_the_cost_the_settings_give(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        PASSWORD_HASH_MEMORY_KIB=64,
        PASSWORD_HASH_TIME_COST=2,
        PASSWORD_HASH_PARALLELISM=2,
    )
    try:
        async with serving(create_app(settings)) as client:
            account = await register(client, email="cost@example.com")
            await login(client, "cost@example.com")
    finally:
        use_parameters(PasswordHashSettings())

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        row = conn.execute(
            "SELECT password_hash FROM accounts WHERE id = %s", (account["id"],)
        ).fetchone()
    assert row is not None
    assert _argon2_fields(row[0])[:2] == ("argon2id", "m=64,t=2,p=2")


def test_too_little_memory_for_the_lanes_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "16")
    monkeypatch.setenv("PASSWORD_HASH_PARALLELISM", "4")

    with pytest.raises(ConfigError, match="PASSWORD_HASH_MEMORY_KIB must be at least 8 x"):
        load_settings()


async def test_a_burst_of_logins_runs_at_most_one_hash_per_core() -> None:
    # 16 MiB: a hash long enough for the burst to be seen queueing (the tests' cheap cost
    # finishes one between two looks), yet cheaper than the default's 64 MiB x 3 passes.
    use_parameters(PasswordHashSettings(memory_kib=16_384, time_cost=1, parallelism=1))
    try:
        await _burst()
    finally:
        use_parameters(PasswordHashSettings())


async def _burst() -> None:
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
