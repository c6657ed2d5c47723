"""Rate limits as a caller sees them, in one process (memory storage when REDIS_URL is unset):
the draft-10 headers, the 429 problem, tiers, endpoint groups, write cost, exemption and the
penalty for repeat offenders. Sharing across processes and Redis failure: test_shared.py."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.edge_support import LIMITED, app_client, quota_named, rate_fields
from tests.helpers import login, promote_to_admin, register


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for counting in process memory, or on the test Redis (keys of this test
    alone): the same behaviour is expected of both."""
    if request.param == "memory":
        return {"REDIS_URL": None}
    return {
        "REDIS_URL": request.getfixturevalue("redis_url"),
        "REDIS_KEY_PREFIX": f"cctest-{uuid.uuid4().hex[:10]}",
    }


def _decisions(policy: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "chainconsult_rate_limit_decisions_total", {"policy": policy, "result": result}
    )
    return value or 0.0


async def test_anonymous_quota_counts_down_then_429_names_the_policy(
    database_url: str, tmp_path: Path, backend: dict[str, Any]
) -> None:
    settings = make_settings(database_url, tmp_path, **backend, RATE_LIMIT_ANONYMOUS="3/minute")
    limited_before = _decisions("anonymous", "limited")
    async with app_client(settings) as client:
        responses = [await client.get(LIMITED) for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    for response in responses:
        assert quota_named(response, "RateLimit-Policy", "anonymous") == {"q": 3, "w": 60}
    remaining = [quota_named(r, "RateLimit", "anonymous")["r"] for r in responses]
    assert remaining == [2, 1, 0, 0]
    assert all(0 < quota_named(r, "RateLimit", "anonymous")["t"] <= 60 for r in responses)
    refused = responses[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["status"] == 429
    assert problem["policy"] == "anonymous"
    assert int(refused.headers["Retry-After"]) >= 1
    assert problem["retry_after"] == int(refused.headers["Retry-After"])
    assert problem["request_id"] == refused.headers["x-request-id"]
    assert _decisions("anonymous", "limited") == limited_before + 1


async def test_each_ipv4_address_and_each_ipv6_64_network_has_its_own_anonymous_quota(
    database_url: str, tmp_path: Path
) -> None:
    """An IPv6 host picks addresses freely inside its /64: rotating them gains nothing."""
    settings = make_settings(
        database_url, tmp_path, REDIS_URL=None, RATE_LIMIT_ANONYMOUS="1/minute"
    )
    expected = [
        ("192.0.2.10", 200),
        ("192.0.2.10", 429),
        ("192.0.2.11", 200),
        ("2001:db8:1:2::1", 200),
        ("2001:db8:1:2:ffff::9", 429),  # the same /64
        ("2001:db8:1:3::1", 200),
    ]
    app = create_app(settings)
    answers = []
    async with LifespanManager(app) as manager:
        for ip, _ in expected:
            transport = httpx.ASGITransport(app=manager.app, client=(ip, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answers.append((ip, (await client.get(LIMITED)).status_code))
    assert answers == expected


async def test_logged_in_caller_gets_the_tier_of_their_plan(
    database_url: str, tmp_path: Path, backend: dict[str, Any]
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        **backend,
        RATE_LIMIT_FREE="4/minute",
        RATE_LIMIT_PRO="8/minute",
        RATE_LIMIT_AUTH="50/minute",
    )
    async with app_client(settings) as client:
        account = await register(client)
        headers = await login(client, account["email"])
        client.cookies.clear()
        first = await client.get("/api/v2/auth/me", headers=headers)
        assert quota_named(first, "RateLimit-Policy", "free") == {"q": 4, "w": 60}
        assert quota_named(first, "RateLimit", "free")["r"] == 3
        statuses = [
            (await client.get("/api/v2/auth/me", headers=headers)).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]


async def test_plan_upgrade_applies_on_the_next_request(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        RATE_LIMIT_FREE="2/minute",
        RATE_LIMIT_PRO="50/minute",
        RATE_LIMIT_AUTH="50/minute",
        RATE_LIMIT_PENALTY_MAX=0,
    )
    async with app_client(settings) as client:
        admin = await register(client)
        promote_to_admin(database_url, admin["id"])
        user = await register(client)
        admin_headers = await login(client, admin["email"])
        client.cookies.clear()
        user_headers = await login(client, user["email"])
        client.cookies.clear()
        for _ in range(2):
            await client.get("/api/v2/auth/me", headers=user_headers)
        assert (await client.get("/api/v2/auth/me", headers=user_headers)).status_code == 429

        upgraded = await client.post(
            f"/api/v2/admin/users/{user['id']}/plan", json={"plan": "pro"}, headers=admin_headers
        )
        assert upgraded.status_code == 200
        after = await client.get("/api/v2/auth/me", headers=user_headers)

    assert after.status_code == 200
    assert quota_named(after, "RateLimit-Policy", "pro") == {"q": 50, "w": 60}


async def test_login_is_limited_per_ip_by_the_auth_policy(
    database_url: str, tmp_path: Path, backend: dict[str, Any]
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        **backend,
        RATE_LIMIT_AUTH="2/minute",
        RATE_LIMIT_ANONYMOUS="100/minute",
    )
    body = {"email": "nobody@example.com", "password": "wrong password"}
    async with app_client(settings) as client:
        responses = [await client.post("/api/v2/auth/login", json=body) for _ in range(3)]
        other_route = await client.get(LIMITED)

    assert [r.status_code for r in responses] == [401, 401, 429]
    assert responses[-1].json()["policy"] == "auth"
    policies = {q.name for q in rate_fields(responses[0], "RateLimit-Policy")}
    assert policies == {"auth", "anonymous"}
    assert quota_named(responses[1], "RateLimit", "auth")["r"] == 0
    # The auth policy covers the login endpoints only.
    assert other_route.status_code == 200


async def test_a_write_takes_more_of_the_quota_than_a_read(
    database_url: str, tmp_path: Path, backend: dict[str, Any]
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        **backend,
        RATE_LIMIT_ANONYMOUS="20/minute",
        RATE_LIMIT_WRITE_COST=5,
        RATE_LIMIT_AUTH="50/minute",
    )
    async with app_client(settings) as client:
        read = await client.get(LIMITED)
        write = await client.post("/api/v2/auth/login", json={"email": "a@b.c", "password": "x"})

    assert quota_named(read, "RateLimit", "anonymous")["r"] == 19
    assert quota_named(write, "RateLimit", "anonymous")["r"] == 14


async def test_trusted_ips_are_not_limited(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        RATE_LIMIT_ANONYMOUS="1/minute",
        TRUSTED_IPS="127.0.0.0/8",
    )
    exempt_before = _decisions("trusted", "exempt")
    async with app_client(settings) as client:
        responses = [await client.get(LIMITED) for _ in range(5)]

    assert [r.status_code for r in responses] == [200] * 5
    assert "ratelimit" not in responses[0].headers
    assert _decisions("trusted", "exempt") == exempt_before + 5


async def test_repeat_offender_is_refused_for_longer_each_time(
    database_url: str, tmp_path: Path, backend: dict[str, Any]
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        **backend,
        RATE_LIMIT_ANONYMOUS="2/second",
        RATE_LIMIT_PENALTY_MAX=60,
    )
    penalties: list[int] = []
    async with app_client(settings) as client:
        for _ in range(3):
            if penalties:
                await asyncio.sleep(penalties[-1] + 0.1)
            # Keep calling until refused, and twice more: by then the caller is serving a
            # penalty for the repeated offence.
            while (await client.get(LIMITED)).status_code != 429:
                pass
            await client.get(LIMITED)
            during = await client.get(LIMITED)
            assert during.status_code == 429
            assert "keep exceeding" in during.json()["detail"]
            penalties.append(int(during.headers["Retry-After"]))

    assert penalties[0] >= 1
    assert penalties[1] > penalties[0]
    assert penalties[2] > penalties[1]


async def test_during_a_penalty_every_quota_reads_used_up_until_retry_after(
    database_url: str, tmp_path: Path, backend: dict[str, Any]
) -> None:
    """The per-minute quota has plenty left, but a penalty refuses everything: RateLimit must
    not say otherwise, nor promise a reset before Retry-After."""
    settings = make_settings(
        database_url,
        tmp_path,
        **backend,
        RATE_LIMIT_ANONYMOUS="2/second;1000/minute",
        RATE_LIMIT_PENALTY_MAX=60,
    )
    async with app_client(settings) as client:
        refused: list[Any] = []
        # The first refusal is a strike, the second starts a penalty, the third is served under
        # it (a penalty lasts at least the one-second window, far longer than three requests).
        while len(refused) < 3:
            response = await client.get(LIMITED)
            if response.status_code == 429:
                refused.append(response)

    for response in refused[1:]:
        retry_after = int(response.headers["Retry-After"])
        quotas = {q.name: q.params for q in rate_fields(response, "RateLimit")}
        assert set(quotas) == {"anonymous-1s", "anonymous-60s"}
        assert all(params == {"r": 0, "t": retry_after} for params in quotas.values()), quotas
    served = refused[2]
    assert "keep exceeding" in served.json()["detail"]
    assert served.json()["retry_after"] == int(served.headers["Retry-After"])


async def test_health_probes_are_never_limited_but_the_detailed_report_is(
    database_url: str, tmp_path: Path
) -> None:
    """A load balancer polls readiness from one address: a 429 there would read as "node
    down" and take a healthy node out of rotation."""
    settings = make_settings(
        database_url, tmp_path, REDIS_URL=None, RATE_LIMIT_ANONYMOUS="1/minute"
    )
    exempt_before = _decisions("probe", "exempt")
    probes = ("/livez", "/readyz", "/api/health", "/api/v1/health", "/api/v2/health")
    async with app_client(settings) as client:
        answers = [await client.get(path) for path in probes for _ in range(3)]
        heads = [await client.head("/readyz") for _ in range(3)]
        detailed = [await client.post("/api/health") for _ in range(2)]

    assert [r.status_code for r in answers + heads] == [200] * 18
    assert not any("ratelimit" in r.headers for r in answers + heads)
    assert _decisions("probe", "exempt") == exempt_before + 18
    assert [r.status_code for r in detailed] == [401, 429]
