"""The benchmark's peer app (bench/peer/) answers like chainconsult on the same data: the
same experts for the same query, logins with the demo password, /me, proposals under the same
uniqueness rule; and it carries the stack it stands for (fastapi-cache2 on Redis, slowapi
with Redis storage, CORS, security headers)."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from chainconsult.app import create_app
from tests.admin.test_demo_data import run_demo_data
from tests.conftest import MigratedDatabases, make_settings
from tests.helpers import serving
from tests.market import libpq, query

pytestmark = pytest.mark.redis

DEMO_PASSWORD = "demo password 2026"
EXPERT = "expert001@demo.chainconsult.dev"
ORIGIN = "https://app.example.com"
# Keys of this run never meet a benchmark's peer keys or another run's on a shared Redis.
PREFIX = f"peertest-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def demo_database(
    migrated_databases: MigratedDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of its own, migrated and loaded with `chainconsult demo-data`, kept for the
    whole module (the shared test database is emptied after every test)."""
    rendered = migrated_databases.create("cc_peer")
    run_demo_data(rendered, tmp_path_factory.mktemp("demo"))
    yield rendered
    migrated_databases.drop(rendered)


@pytest.fixture(scope="module")
def peer_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    for pattern in (f"{PREFIX}-cache:*", f"LIMITS:LIMITER/{PREFIX}-rl/*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


@pytest.fixture(scope="module")
async def peer(
    demo_database: str, redis_url: str, peer_redis: redis.Redis
) -> AsyncIterator[AsyncClient]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PEER_DATABASE_URL", libpq(demo_database))
        env.setenv("PEER_REDIS_URL", redis_url)
        env.setenv("PEER_KEY_PREFIX", PREFIX)
        env.setenv("PEER_ALLOWED_ORIGINS", json.dumps([ORIGIN]))
        # The app reads its settings at import, as the benchmark starts it.
        module = sys.modules.get("bench.peer.app")
        module = importlib.reload(module) if module else importlib.import_module("bench.peer.app")
    async with LifespanManager(module.app):
        # The app itself, not manager.app: that one hands every request the same state dict,
        # where slowapi's per-request "already counted" flag would then stick (uvicorn gives
        # each request a copy).
        transport = ASGITransport(app=module.app, client=("127.0.0.1", 50001))
        async with AsyncClient(transport=transport, base_url="http://peer") as http:
            yield http


@pytest.fixture(scope="module")
async def chainconsult(
    demo_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncClient]:
    settings = make_settings(demo_database, tmp_path_factory.mktemp("cc"), REDIS_URL=None)
    app = create_app(settings)
    async with serving(app, client=("127.0.0.1", 50002), base_url="http://cc") as http:
        yield http


async def bearer(client: AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v2/auth/login", json={"email": email, "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def all_ids(client: AsyncClient, params: dict[str, Any]) -> list[str]:
    """Every expert the query lists, page after page by cursor."""
    ids: list[str] = []
    page_params = dict(params)
    while True:
        page = await client.get("/api/v2/experts", params=page_params)
        assert page.status_code == 200, page.text
        ids += [expert["id"] for expert in page.json()["data"]]
        if page.json()["next_cursor"] is None:
            return ids
        page_params["cursor"] = page.json()["next_cursor"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 100},
        {"skill": "solidity", "limit": 7},
        {"skill": "defi", "chain": ["ethereum"], "limit": 2},
        {"q": "auditor", "sort": "rate", "limit": 9},
        {"min_rating": "4", "sort": "newest", "limit": 11},
        {"max_rate": "150", "sort": "rate"},
    ],
)
@pytest.mark.slow
async def test_directory_lists_the_same_experts_in_the_same_order(
    peer: AsyncClient, chainconsult: AsyncClient, params: dict[str, Any]
) -> None:
    first = await peer.get("/api/v2/experts", params=params)
    theirs = await chainconsult.get("/api/v2/experts", params=params)

    # highlight (relevance search, issue 23) is chainconsult's own: the peer stands for the
    # directory as it was, and lists the same experts.
    chainconsult_items = [
        {key: value for key, value in item.items() if key != "highlight"}
        for item in theirs.json()["data"]
    ]
    assert first.json()["data"] == chainconsult_items
    peer_ids = await all_ids(peer, params)
    assert peer_ids == await all_ids(chainconsult, params)
    assert len(peer_ids) == len(set(peer_ids)) > 0


async def test_expert_detail_is_the_same_document(
    peer: AsyncClient, chainconsult: AsyncClient, demo_database: str
) -> None:
    [(reviewed,)] = query(
        demo_database, "SELECT id FROM expert_profiles ORDER BY rating_count DESC, id LIMIT 1"
    )

    ours = await peer.get(f"/api/v2/experts/{reviewed}")
    theirs = await chainconsult.get(f"/api/v2/experts/{reviewed}")
    missing = await peer.get(f"/api/v2/experts/{uuid.uuid4()}")

    assert ours.status_code == 200
    assert ours.json() == theirs.json()
    assert ours.json()["recent_reviews"]
    assert missing.status_code == 404


async def test_second_directory_read_is_a_fastapi_cache_hit_in_redis(
    peer: AsyncClient, peer_redis: redis.Redis
) -> None:
    params = {"sort": "newest", "limit": 13}

    first = await peer.get("/api/v2/experts", params=params)
    second = await peer.get("/api/v2/experts", params=params)

    assert first.headers["X-FastAPI-Cache"] == "MISS"
    assert second.headers["X-FastAPI-Cache"] == "HIT"
    assert second.json() == first.json()
    assert list(peer_redis.scan_iter(f"{PREFIX}-cache:*list_experts*"))


async def test_login_with_the_demo_password_and_me(
    peer: AsyncClient, chainconsult: AsyncClient
) -> None:
    wrong = await peer.post("/api/v2/auth/login", json={"email": EXPERT, "password": "nope"})
    unknown = await peer.post(
        "/api/v2/auth/login", json={"email": "nobody@example.com", "password": DEMO_PASSWORD}
    )
    ours = await peer.get("/api/v2/auth/me", headers=await bearer(peer, EXPERT))
    theirs = await chainconsult.get("/api/v2/auth/me", headers=await bearer(chainconsult, EXPERT))
    forged = await peer.get("/api/v2/auth/me", headers={"Authorization": "Bearer not.a.jwt"})

    assert wrong.status_code == 401
    assert unknown.status_code == 401
    assert ours.status_code == 200
    assert ours.json() == {
        key: theirs.json()[key] for key in ("id", "email", "display_name", "role", "plan")
    }
    assert forged.status_code == 401


async def test_proposal_is_stored_once_and_a_repeat_is_409(
    peer: AsyncClient, chainconsult: AsyncClient, demo_database: str
) -> None:
    [(project_id, currency)] = query(
        demo_database,
        "SELECT p.id, p.budget_currency FROM projects p, accounts a WHERE a.email = %s "
        "AND p.status = 'open' AND p.visibility = 'public' AND p.client_id <> a.id "
        "AND NOT EXISTS (SELECT 1 FROM proposals x WHERE x.project_id = p.id "
        "AND x.expert_id = a.id) ORDER BY p.id LIMIT 1",
        EXPERT,
    )
    body = {
        "cover_letter": "I audited three lending protocols like this one last year.",
        "price": {"amount": "4200.00", "currency": currency},
        "estimated_days": 14,
    }
    path = f"/api/v2/projects/{project_id}/proposals"
    headers = await bearer(peer, EXPERT)

    created = await peer.post(path, json=body, headers=headers)
    repeat = await peer.post(path, json=body, headers=headers)
    on_chainconsult = await chainconsult.post(
        path, json=body, headers=await bearer(chainconsult, EXPERT)
    )

    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    rows = query(
        demo_database,
        "SELECT x.id::text, x.price_amount::text, x.status FROM proposals x "
        "JOIN accounts a ON a.id = x.expert_id WHERE x.project_id = %s AND a.email = %s",
        project_id,
        EXPERT,
    )
    assert rows == [(created.json()["id"], "4200.00", "pending")]
    assert repeat.status_code == 409
    assert on_chainconsult.status_code == 409  # the one rule, whichever app wrote first


async def test_cors_and_security_headers(peer: AsyncClient) -> None:
    allowed = await peer.get("/api/v2/experts", headers={"Origin": ORIGIN})
    other = await peer.get("/api/v2/experts", headers={"Origin": "https://evil.example"})
    preflight = await peer.options(
        "/api/v2/auth/login",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Access-Control-Allow-Origin" not in other.headers
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert allowed.headers["X-Content-Type-Options"] == "nosniff"
    assert allowed.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "max-age=" in allowed.headers["Strict-Transport-Security"]
    assert "default-src" in allowed.headers["Content-Security-Policy"]


async def test_slowapi_counts_every_route_in_redis(
    peer: AsyncClient, peer_redis: redis.Redis
) -> None:
    await peer.get("/api/v2/experts", params={"limit": 3})
    await peer.get("/api/v2/auth/me")
    await peer.post("/api/v2/auth/login", json={"email": EXPERT, "password": "nope"})

    keys = {key.decode() for key in peer_redis.scan_iter(f"LIMITS:LIMITER/{PREFIX}-rl/*")}
    for path in ("/api/v2/experts", "/api/v2/auth/me", "/api/v2/auth/login"):
        assert any(f"/{path}/" in key for key in keys), (path, sorted(keys))
