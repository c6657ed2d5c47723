"""The pool follows its settings and reports checked-out, idle and overflow connections and
wait time; readiness tells a briefly saturated pool from one that stays exhausted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.db.pool import pool_status
from tests.conftest import make_settings
from tests.infra.db.conftest import AppClient


def gauge(state: str) -> float | None:
    return REGISTRY.get_sample_value("chainconsult_db_pool_connections", {"state": state})


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = make_settings(
        database_url,
        tmp_path,
        DATABASE_MAX_CONNECTIONS=2,
        DATABASE_MAX_OVERFLOW=1,
        DATABASE_CONNECTION_TIMEOUT=300,
        DATABASE_POOL_RECYCLE=600,
    )
    engine = build_engine(settings.database)
    yield engine
    await engine.dispose()


async def test_pool_is_built_from_settings(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool
    status = pool_status(engine)

    assert (status.size, status.max_overflow, status.capacity) == (2, 1, 3)
    assert status.timeout_seconds == pytest.approx(0.3)
    assert pool._recycle == 600  # type: ignore[attr-defined]
    # Checked at checkout by a look at its socket instead (test_liveness.py).
    assert pool._pre_ping is False  # type: ignore[attr-defined]


async def test_status_and_metrics_follow_checkouts_and_overflow(engine: AsyncEngine) -> None:
    waits_before = REGISTRY.get_sample_value("chainconsult_db_pool_wait_seconds_count") or 0
    connections: list[AsyncConnection] = []
    for _ in range(3):
        conn = await engine.connect()
        await conn.execute(text("SELECT 1"))
        connections.append(conn)

    full = pool_status(engine)
    assert (full.checked_out, full.idle, full.overflow) == (3, 0, 1)
    assert (gauge("checked_out"), gauge("idle"), gauge("overflow")) == (3, 0, 1)

    # A fourth caller waits, then gives up after DATABASE_CONNECTION_TIMEOUT.
    with pytest.raises(sa_exc.TimeoutError, match="QueuePool limit"):
        await engine.connect()
    assert pool_status(engine).timeouts == 1

    for conn in connections:
        await conn.close()
    drained = pool_status(engine)
    # The overflow connection is closed on return; the pool keeps its two.
    assert (drained.checked_out, drained.idle, drained.overflow) == (0, 2, 0)
    assert (gauge("checked_out"), gauge("idle"), gauge("overflow")) == (0, 2, 0)
    assert drained.exhausted_seconds == 0
    waits = REGISTRY.get_sample_value("chainconsult_db_pool_wait_seconds_count") or 0
    assert waits >= waits_before + 4


async def test_exhaustion_is_measured_from_the_first_caller_that_had_to_wait(
    engine: AsyncEngine,
) -> None:
    connections = [await engine.connect() for _ in range(3)]
    for conn in connections:
        await conn.execute(text("SELECT 1"))
    assert pool_status(engine).exhausted_seconds == 0  # full, but nobody waited yet

    async def connect() -> AsyncConnection:
        return await engine.connect()

    waiter = asyncio.create_task(connect())
    await asyncio.sleep(0.1)
    waiting = pool_status(engine)
    assert waiting.waiting == 1
    assert 0 < waiting.exhausted_seconds < waiting.timeout_seconds
    assert not waiting.exhausted
    with pytest.raises(sa_exc.TimeoutError):
        await waiter
    # Nobody got a connection for longer than a caller may wait.
    gave_up = pool_status(engine)
    assert (gave_up.waiting, gave_up.exhausted) == (0, True)

    # A connection comes back and goes straight to a waiter: still no room.
    second_waiter = asyncio.create_task(connect())
    await asyncio.sleep(0.05)
    await connections.pop().close()
    handed_over = await second_waiter
    assert pool_status(engine).exhausted
    await handed_over.close()  # nobody waits for this one: room again
    assert pool_status(engine).exhausted_seconds == 0
    for conn in connections:
        await conn.close()


async def test_pool_status_refuses_an_engine_it_does_not_instrument(database_url: str) -> None:
    plain = create_async_engine(database_url)
    try:
        with pytest.raises(TypeError, match="build_engine"):
            pool_status(plain)
    finally:
        await plain.dispose()


async def test_readiness_passes_while_the_pool_is_only_briefly_saturated(
    app_client: AppClient,
) -> None:
    env = {
        "DATABASE_MAX_CONNECTIONS": 1,
        "DATABASE_MAX_OVERFLOW": 0,
        "DATABASE_CONNECTION_TIMEOUT": 5000,
    }
    async with app_client(**env) as (_, client):
        holder = asyncio.create_task(client.get("/test/sleep", params={"seconds": 0.8}))
        await asyncio.sleep(0.2)
        queued = asyncio.create_task(client.get("/test/sleep", params={"seconds": 0}))
        await asyncio.sleep(0.1)

        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "pass", "notes": ["database pool busy"]}

        assert [(await holder).status_code, (await queued).status_code] == [200, 200]
        assert (await client.get("/readyz")).json() == {"status": "pass"}
