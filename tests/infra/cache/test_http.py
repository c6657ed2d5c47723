"""The cache seen through the HTTP API: real server processes, real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis

from chainconsult.app import create_app
from chainconsult.infra.cache import Cache, CircuitState
from chainconsult.infra.resources import resources_of
from tests.cli_runner import run_cli
from tests.conftest import REDIS_PREFIX, TEST_SECRET, make_settings
from tests.helpers import PASSWORD, login, promote_to_admin, register, serving
from tests.private_redis import private_redis
from tests.servers import api_servers

pytestmark = [pytest.mark.redis, pytest.mark.slow]
PROMOTE_OPS = ("create-admin", "ops@example.com", "--password-stdin")


async def me(client: AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/v2/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_plan_change_and_logout_are_seen_by_the_next_request_in_every_process(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        # A loaded test machine must not open the circuit: this test is about the Redis path.
        "REDIS_SOCKET_TIMEOUT": "2000",
    }
    with api_servers(2, env, tmp_path) as urls:
        first, second = (AsyncClient(base_url=url, timeout=10) for url in urls)
        async with first, second:
            user = await register(first, email="ada@example.com")
            admin = await register(first, email="root@example.com")
            promote_to_admin(database_url, admin["id"])
            user_auth = await login(first, "ada@example.com")
            admin_auth = await login(second, "root@example.com")
            # Both processes now hold the principal and the profile in L1 and in Redis.
            assert (await me(first, user_auth))["plan"] == "free"
            assert (await me(second, user_auth))["plan"] == "free"

            for round_, plan in enumerate(["pro", "enterprise", "free", "pro", "enterprise"]):
                writer, reader = (first, second) if round_ % 2 == 0 else (second, first)
                changed = await writer.post(
                    f"/api/v2/admin/users/{user['id']}/plan",
                    json={"plan": plan},
                    headers=admin_auth,
                )
                assert changed.status_code == 200
                assert (await me(reader, user_auth))["plan"] == plan
                assert (await me(writer, user_auth))["plan"] == plan

            assert (await first.post("/api/v2/auth/logout", headers=user_auth)).status_code == 204
            after = await second.get("/api/v2/auth/me", headers=user_auth)
            assert after.status_code == 401


async def _health(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/health")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _redis_check_eventually(client: AsyncClient, status: str, timeout: float = 15) -> str:
    """The status of the ``redis:responseTime`` check (other checks, such as jobs waiting for
    a worker that this test does not run, may keep the overall status at warn)."""
    deadline = time.monotonic() + timeout
    while True:
        body = (await client.get("/api/v2/health")).json()
        found: str = body["checks"]["redis:responseTime"][0]["status"]
        if found == status or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_redis_killed_mid_test_costs_no_request_and_comes_back_by_itself(
    database_url: str, tmp_path: Path
) -> None:
    with private_redis() as server:
        settings = make_settings(database_url, tmp_path, REDIS_URL=server.url)
        app = create_app(settings)
        async with serving(app) as client:
            cache: Cache = resources_of(app).cache
            user = await register(client, email="ada@example.com")
            admin = await register(client, email="root@example.com")
            promote_to_admin(database_url, admin["id"])
            user_auth = await login(client, "ada@example.com")
            admin_auth = await login(client, "root@example.com")
            assert await _redis_check_eventually(client, "pass") == "pass"
            assert (await me(client, user_auth))["plan"] == "free"

            server.kill()
            statuses = []
            for _ in range(20):
                statuses.append(
                    (await client.get("/api/v2/auth/me", headers=user_auth)).status_code
                )
            changed = await client.post(
                f"/api/v2/admin/users/{user['id']}/plan",
                json={"plan": "pro"},
                headers=admin_auth,
            )
            statuses.append(changed.status_code)
            assert (await me(client, user_auth))["plan"] == "pro"  # own write, Redis or not
            assert statuses == [200] * 21
            assert cache.circuit is CircuitState.open
            assert await _redis_check_eventually(client, "warn") == "warn"
            degraded = await _health(client)
            assert degraded["status"] == "warn"
            assert "redis unreachable" in degraded["notes"]

            server.start()
            assert await _redis_check_eventually(client, "pass") == "pass"
            assert "redis unreachable" not in (await _health(client))["notes"]
            assert cache.backend == "redis"
            assert (await me(client, user_auth))["plan"] == "pro"
            redis = Redis.from_url(server.url)
            try:
                stored = [key async for key in redis.scan_iter(match=f"{cache.key_prefix}:cache:*")]
            finally:
                await redis.aclose()
            assert stored, "values are written to Redis again"


async def test_create_admin_takes_effect_at_once_in_a_running_server(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "REDIS_SOCKET_TIMEOUT": "2000",
        "CHAINCONSULT_ENV": "test",
        "SECRET_KEY": TEST_SECRET,
    }
    with api_servers(1, env, tmp_path) as (url,):
        async with AsyncClient(base_url=url, timeout=10) as client:
            await register(client, email="ops@example.com")
            auth = await login(client, "ops@example.com")
            admin_only = "/api/v2/admin/expert-applications"
            assert (await client.get(admin_only, headers=auth)).status_code == 403  # now cached

            # In-process (its own event loop, so in a thread): the server is the real process.
            promoted = await asyncio.to_thread(
                run_cli, *PROMOTE_OPS, env=env, cwd=tmp_path, stdin=PASSWORD
            )
            assert promoted.returncode == 0, promoted.stderr

            assert (await client.get(admin_only, headers=auth)).status_code == 200
