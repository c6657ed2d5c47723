"""Who may read detailed health and /metrics, and what they contain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings
from tests.helpers import login, promote_to_admin, register, serving
from tests.infra.health.test_health_formats import EVERY_CHECK, validate_draft


async def admin_headers(client: AsyncClient, database_url: str) -> dict[str, str]:
    account = await register(client)
    promote_to_admin(database_url, account["id"])
    return await login(client, account["email"])


async def test_detailed_health_without_credentials_is_401(client: AsyncClient) -> None:
    response = await client.post("/api/health")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "TRUSTED_IPS" in response.json()["detail"]


async def test_detailed_health_refuses_a_non_admin(client: AsyncClient) -> None:
    account = await register(client)
    headers = await login(client, account["email"])

    response = await client.post("/api/health", headers=headers)

    assert response.status_code == 403


async def test_detailed_health_for_an_admin_has_every_check(
    client: AsyncClient, database_url: str
) -> None:
    headers = await admin_headers(client, database_url)

    response = await client.post("/api/health", headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    validate_draft(body)
    assert set(body["checks"]) == EVERY_CHECK
    pool = body["checks"]["postgres:connections"][0]
    assert pool["detail"]["capacity"] == 5 + 10  # DATABASE_MAX_CONNECTIONS + overflow
    assert body["alerts"] == []
    assert set(body["traffic"]) >= {"requests_per_second", "error_rate", "p95_ms"}
    assert "slow_queries" in body
    assert body["cache_hit_rates"] == {}  # no cache module registered its numbers
    assert body["node"]


@pytest.fixture
async def trusted_client(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, TRUSTED_IPS="127.0.0.0/8")
    app = create_app(settings)
    async with serving(app) as http:
        yield http


async def test_trusted_ips_read_detailed_health_and_metrics_without_login(
    trusted_client: AsyncClient,
) -> None:
    assert (await trusted_client.post("/api/health")).status_code == 200
    response = await trusted_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


async def test_metrics_needs_an_admin_outside_trusted_ips(
    client: AsyncClient, database_url: str
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    headers = await admin_headers(client, database_url)
    assert (await client.get("/metrics", headers=headers)).status_code == 200


async def test_metrics_count_requests_by_route_template_not_raw_path(
    trusted_client: AsyncClient,
) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    for alert_id in ids:
        await trusted_client.post(f"/api/v2/admin/alerts/{alert_id}/ack")
    await trusted_client.get("/no/such/page")
    await trusted_client.post(
        "/api/v2/auth/login", json={"email": "a@example.com", "password": "x"}
    )
    await trusted_client.get("/status/static/status.css")

    text = (await trusted_client.get("/metrics")).text

    line = next(
        row
        for row in text.splitlines()
        if row.startswith("chainconsult_http_requests_total{")
        and 'route="/api/v2/admin/alerts/{alert_id}/ack"' in row
        and 'status="401"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert not any(str(alert_id) in text for alert_id in ids)
    assert 'route="unmatched"' in text
    # Routes of included routers carry their full template, mounts their prefix.
    assert 'route="/api/v2/auth/login"' in text
    assert 'route="/status/static/{path}"' in text
    # Every contract metric family is exposed, plus process and host gauges.
    for name in (
        "chainconsult_http_request_duration_seconds",
        "chainconsult_db_pool_connections",
        "chainconsult_process_resident_memory_bytes",
        "chainconsult_system_memory_used_ratio",
        "chainconsult_data_dir_disk_used_ratio",
    ):
        assert f"# TYPE {name} " in text, name


async def test_detailed_health_includes_what_a_cache_module_registers(
    database_url: str, tmp_path: Path
) -> None:
    async def hit_rates() -> dict[str, float]:
        return {"experts": 0.92, "projects": 0.5}

    app = create_app(make_settings(database_url, tmp_path, REDIS_URL=None, TRUSTED_IPS="127.0.0.1"))
    async with serving(app) as http:
        # What a cache module does from the lifespan: register its own numbers.
        resources_of(app).monitoring.providers.cache_hit_rates = hit_rates
        body = (await http.post("/api/health")).json()

    assert body["cache_hit_rates"] == {"experts": 0.92, "projects": 0.5}
