"""/readyz fails while the request pool stays exhausted, and recovers when it drains."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings
from tests.helpers import serving

pytestmark = pytest.mark.slow


@pytest.fixture
async def small_pool_app(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        DATABASE_MAX_CONNECTIONS=1,
        DATABASE_MAX_OVERFLOW=0,
        DATABASE_CONNECTION_TIMEOUT=1000,
        HEALTH_CACHE_SECONDS="0.2",
    )
    app = create_app(settings)
    async with serving(app) as http:
        yield app, http


async def test_readyz_fails_while_the_pool_stays_exhausted(
    small_pool_app: tuple[FastAPI, AsyncClient],
) -> None:
    app, http = small_pool_app
    assert (await http.get("/readyz")).status_code == 200

    # Every connection of the request pool is taken (a stuck request would do the same).
    async with resources_of(app).engine.connect():
        # Taken but nobody waiting: busy, not sick.
        assert (await http.get("/readyz")).status_code == 200
        # A request now has to wait for a connection, longer than it may (1 s): it gets a
        # 503 problem, and from then on the pool counts as exhausted.
        waited = await http.get("/api/v2/experts")
        assert waited.status_code == 503
        await asyncio.sleep(0.3)  # past HEALTH_CACHE_SECONDS
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert "database pool exhausted" in response.json()["notes"]
        # The database itself still answers (health probes use their own connection).
        deadline = time.monotonic() + 3
        while True:  # the cached report catches up within a probe period or two
            health = (await http.get("/api/v2/health")).json()
            connections = health["checks"]["postgres:connections"][0]["status"]
            if connections == "fail" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert health["checks"]["postgres:responseTime"][0]["status"] == "pass"
        assert connections == "fail"

    # Ready again within a probe period or two once a connection is free.
    deadline = time.monotonic() + 3
    while (await http.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "still not ready 3 s after the pool drained"
        await asyncio.sleep(0.1)


async def test_health_cache_serves_one_probe_to_many_requests(
    small_pool_app: tuple[FastAPI, AsyncClient],
) -> None:
    app, http = small_pool_app
    monitor = resources_of(app).monitoring.health
    first = await monitor.report()

    reports = await asyncio.gather(*(monitor.report() for _ in range(50)))

    # Within the cache period every caller gets the very same report object.
    assert all(report is first for report in reports)
    await asyncio.sleep(0.25)  # past HEALTH_CACHE_SECONDS=0.2, within the stale grace
    stale = await monitor.report()
    assert stale is first  # answered at once while a background probe refreshes
    await asyncio.sleep(0.3)
    assert (await monitor.report()) is not first
    assert (await http.get("/api/health")).status_code == 200
