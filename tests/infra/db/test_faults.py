"""Transient database faults reach users as 503 problems with Retry-After, never as 500s, and
the pool heals without a restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests.infra.db.conftest import AppClient, PrivatePostgres, terminate_backends


def assert_503_problem(response: httpx.Response, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body: dict[str, Any] = response.json()
    assert body["status"] == 503
    assert body["request_id"] == response.headers["x-request-id"]
    if slug is not None:
        assert body["type"].endswith("/" + slug)
    return body


async def test_statement_timeout_cancels_runaway_query_as_503(app_client: AppClient) -> None:
    async with app_client(DATABASE_STATEMENT_TIMEOUT=200) as (_, client):
        started = time.monotonic()
        response = await client.get("/test/sleep", params={"seconds": 5})
        elapsed = time.monotonic() - started

        assert_503_problem(response, "database-timeout")
        assert elapsed < 2
        # The connection went back to the pool in working order.
        assert (await client.get("/test/sleep", params={"seconds": 0})).status_code == 200


async def test_request_can_lower_its_own_statement_timeout(app_client: AppClient) -> None:
    async with app_client(DATABASE_STATEMENT_TIMEOUT=5000) as (_, client):
        response = await client.get(
            "/test/sleep-with-timeout", params={"seconds": 3, "timeout_ms": 100}
        )
        assert_503_problem(response, "database-timeout")

        # SET LOCAL ended with that transaction: the next request has the default again.
        assert (await client.get("/test/sleep", params={"seconds": 0.3})).status_code == 200


async def test_exhausted_pool_answers_503_and_fails_readiness_then_recovers(
    app_client: AppClient,
) -> None:
    env = {
        "DATABASE_MAX_CONNECTIONS": 1,
        "DATABASE_MAX_OVERFLOW": 0,
        "DATABASE_CONNECTION_TIMEOUT": 200,
    }
    async with app_client(**env) as (_, client):
        holder = asyncio.create_task(client.get("/test/sleep", params={"seconds": 1.5}))
        await asyncio.sleep(0.2)

        waiting = await client.get("/test/sleep", params={"seconds": 0})
        assert_503_problem(waiting, "database-busy")
        await asyncio.sleep(0.3)
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "exhausted" in ready.json()["notes"][0]

        assert (await holder).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/test/sleep", params={"seconds": 0})).status_code == 200


@pytest.mark.slow
async def test_terminated_connections_fail_only_in_flight_requests_and_pool_heals(
    app_client: AppClient, database_url: str
) -> None:
    """pg_terminate_backend on every app connection of this test database, under load."""
    async with app_client(DATABASE_MAX_CONNECTIONS=5, DATABASE_MAX_OVERFLOW=0) as (_, client):
        results: list[tuple[float, float, httpx.Response]] = []
        stop_at = time.monotonic() + 3.0

        async def user() -> None:
            while time.monotonic() < stop_at:
                started = time.monotonic()
                response = await client.get("/test/load")
                results.append((started, time.monotonic(), response))

        users = [asyncio.create_task(user()) for _ in range(8)]
        await asyncio.sleep(1.0)
        kill_started = time.monotonic()
        terminated = await asyncio.to_thread(terminate_backends, database_url)
        kill_done = time.monotonic()
        await asyncio.gather(*users)

    assert terminated >= 1
    failed = [(s, e, r) for s, e, r in results if r.status_code != 200]
    for started, ended, response in failed:
        assert_503_problem(response)
        # Only requests that were running when the connections were cut.
        assert started <= kill_done
        assert ended >= kill_started
    assert len(failed) <= terminated
    # Healed: everything that started after the kill (and after the failed ones) succeeded.
    after = [r for s, _, r in results if s > kill_done + 0.1]
    assert len(after) > 20
    assert all(r.status_code == 200 for r in after)


@pytest.mark.slow
async def test_database_outage_is_503_and_pool_reconnects_after_restart(
    app_client: AppClient, private_postgres: PrivatePostgres, database_url: str
) -> None:
    """Stop the (private) server under a running app, then start it again."""
    with psycopg.connect(private_postgres.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS accounts (id int)")
    url = private_postgres.url.replace("postgresql://", "postgresql+psycopg://", 1)
    async with app_client(DATABASE_URL=url, DATABASE_CONNECTION_TIMEOUT=1000) as (_, client):
        assert (await client.get("/test/load")).status_code == 200

        await asyncio.to_thread(private_postgres.stop, "fast")
        try:
            down = await client.get("/test/load")
            assert_503_problem(down, "database-unavailable")
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/api/health")).status_code == 503
        finally:
            await asyncio.to_thread(private_postgres.start)
            await asyncio.to_thread(private_postgres.wait_ready)

        # No restart of the app: the pool replaces its dead connections by itself.
        assert (await client.get("/test/load")).status_code == 200
        # Readiness follows within a health probe period or two (probes are cached).
        deadline = time.monotonic() + 5
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "not ready 5 s after the database came back"
            await asyncio.sleep(0.1)
