"""Independent reads of one request run on separate pooled connections, bounded, and fall
back to the request's own connection when the pool has no room."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from chainconsult.errors import NotFound
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.parallel import ParallelReader
from chainconsult.infra.db.pool import pool_status
from tests.conftest import make_settings
from tests.infra.db.conftest import AppClient


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(
        make_settings(database_url, tmp_path, DATABASE_MAX_CONNECTIONS=4).database
    )
    yield engine
    await engine.dispose()


async def test_reads_run_on_separate_connections_at_the_same_time(app_client: AppClient) -> None:
    async with app_client(DATABASE_MAX_CONNECTIONS=5) as (_, client):
        response = await client.get("/test/parallel", params={"delay": 0.05})

    body = response.json()
    assert response.status_code == 200
    assert body["parallel"] is True
    assert body["pids"][0] != body["pids"][1]
    assert body["accounts"] == 0


async def test_reads_fall_back_to_the_request_connection_when_the_pool_is_small(
    app_client: AppClient,
) -> None:
    env = {"DATABASE_MAX_CONNECTIONS": 1, "DATABASE_MAX_OVERFLOW": 0}
    async with app_client(**env) as (_, client):
        response = await client.get("/test/parallel", params={"delay": 0})

    body = response.json()
    assert response.status_code == 200
    assert body["parallel"] is False
    assert body["pids"][0] == body["pids"][1]


async def test_read_intervals_overlap_and_results_keep_their_order(engine: AsyncEngine) -> None:
    maker = build_sessionmaker(engine)
    intervals: list[tuple[float, float]] = []

    def read(value: int) -> object:
        async def run(session: AsyncSession) -> int:
            started = time.monotonic()
            await session.execute(text("SELECT pg_sleep(0.1)"))
            intervals.append((started, time.monotonic()))
            return value

        return run

    async with maker() as session:
        results = await ParallelReader(maker, session).gather(read(1), read(2), read(3))

    assert results == (1, 2, 3)
    latest_start = max(start for start, _ in intervals)
    earliest_end = min(end for _, end in intervals)
    assert latest_start < earliest_end  # all three were running at one moment


async def test_limit_bounds_the_connections_one_call_holds(engine: AsyncEngine) -> None:
    maker = build_sessionmaker(engine)
    running = 0
    most = 0

    async def read(session: AsyncSession) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await session.execute(text("SELECT pg_sleep(0.05)"))
        running -= 1

    async with maker() as session:
        await ParallelReader(maker, session, limit=2).gather(read, read, read, read)

    assert most == 2


async def test_a_failing_read_raises_its_error_and_returns_every_connection(
    engine: AsyncEngine,
) -> None:
    maker = build_sessionmaker(engine)

    async def slow(session: AsyncSession) -> None:
        await session.execute(text("SELECT pg_sleep(1)"))

    async def missing(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1"))
        raise NotFound("No such expert.")

    async with maker() as session:
        with pytest.raises(NotFound):
            await ParallelReader(maker, session).gather(slow, missing)

    await asyncio.sleep(0)
    assert pool_status(engine).checked_out == 0
