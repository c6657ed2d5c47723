"""Limits shared by real server processes through real Redis, and what happens when that
Redis dies and comes back (a private redis-server of the test; never the shared one)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.edge_support import LIMITED, PrivateRedis, StartServers, quota_named, server_env
from tests.helpers import PASSWORD, promote_to_admin

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _status_and_remaining(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, quota_named(response, "RateLimit", "anonymous")["r"]


def test_two_processes_share_one_limit_exactly(
    servers: StartServers, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = server_env(database_url, tmp_path, REDIS_URL=redis_url, RATE_LIMIT_ANONYMOUS="10/minute")
    first, second = servers(env, 2)

    with httpx.Client(timeout=10) as http:
        seen = [
            _status_and_remaining(http.get(f"{(first, second)[i % 2].url}{LIMITED}"))
            for i in range(10)
        ]
        over_first = http.get(f"{first.url}{LIMITED}")
        over_second = http.get(f"{second.url}{LIMITED}")

    assert seen == [(200, remaining) for remaining in range(9, -1, -1)]
    assert over_first.status_code == over_second.status_code == 429
    assert over_first.json()["policy"] == "anonymous"
    assert int(over_first.headers["Retry-After"]) >= 1


def test_plan_upgrade_on_one_process_applies_on_the_other_at_once(
    servers: StartServers, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = server_env(
        database_url,
        tmp_path,
        REDIS_URL=redis_url,
        RATE_LIMIT_FREE="3/minute",
        RATE_LIMIT_PRO="30/minute",
        RATE_LIMIT_AUTH="100/minute",
        RATE_LIMIT_ANONYMOUS="100/minute",
        RATE_LIMIT_PENALTY_MAX=0,
    )
    first, second = servers(env, 2)

    def bearer(http: httpx.Client, base: str, email: str) -> dict[str, str]:
        response = http.post(
            f"{base}/api/v2/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        # Keep to the bearer token: the cookie would make the next login count as this one.
        http.cookies.clear()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    with httpx.Client(timeout=10) as http:
        ids = {}
        for email in ("boss@example.com", "user@example.com"):
            created = http.post(
                f"{first.url}/api/v2/auth/register",
                json={"email": email, "password": PASSWORD, "display_name": "X"},
            )
            assert created.status_code == 201, created.text
            ids[email] = created.json()["id"]
        promote_to_admin(database_url, ids["boss@example.com"])
        admin = bearer(http, first.url, "boss@example.com")
        user = bearer(http, first.url, "user@example.com")

        used = [http.get(f"{first.url}/api/v2/auth/me", headers=user).status_code for _ in range(3)]
        refused = http.get(f"{second.url}/api/v2/auth/me", headers=user)
        upgrade = http.post(
            f"{second.url}/api/v2/admin/users/{ids['user@example.com']}/plan",
            json={"plan": "pro"},
            headers=admin,
        )
        after = http.get(f"{first.url}/api/v2/auth/me", headers=user)

    assert used == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["policy"] == "free"
    assert upgrade.status_code == 200
    assert after.status_code == 200
    assert quota_named(after, "RateLimit-Policy", "pro") == {"q": 30, "w": 60}


def test_redis_dying_falls_back_to_per_process_limits_and_recovers(
    servers: StartServers, database_url: str, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        env = server_env(
            database_url,
            tmp_path,
            REDIS_URL=redis.url,
            RATE_LIMIT_ANONYMOUS="6/minute",
            RATE_LIMIT_PENALTY_MAX=0,
            RATE_LIMIT_REDIS_PROBE_INTERVAL="0.2",
        )
        first, second = servers(env, 2)
        with httpx.Client(timeout=10) as http:

            def round_robin(count: int) -> list[int]:
                return [
                    http.get(f"{(first, second)[i % 2].url}{LIMITED}").status_code
                    for i in range(count)
                ]

            shared = round_robin(7)
            redis.kill()
            # Each process now counts on its own: six each, then 429; never a 5xx.
            during_first = [http.get(f"{first.url}{LIMITED}").status_code for _ in range(7)]
            during_second = [http.get(f"{second.url}{LIMITED}").status_code for _ in range(7)]
            redis.start()
            time.sleep(1.0)  # several probe intervals
            recovered = round_robin(7)
    finally:
        redis.kill()

    assert shared == [200] * 6 + [429]
    assert during_first == [200] * 6 + [429]
    assert during_second == [200] * 6 + [429]
    # Shared again: the seventh request over both processes is the one refused.
    assert recovered == [200] * 6 + [429]
