from __future__ import annotations

from httpx import AsyncClient


async def test_brief_health_warns_without_redis(client: AsyncClient) -> None:
    response = await client.get("/api/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    assert body["status"] == "warn"
    assert "redis not configured" in body["notes"]
    assert body["uptime"] >= 0


async def test_livez_and_readyz_pass_with_the_database_up(client: AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "pass"}
    assert (await client.get("/readyz")).status_code == 200
