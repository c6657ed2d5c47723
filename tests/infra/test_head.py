"""HEAD on every GET route: the GET's status and headers, no body, counted as HEAD."""

from __future__ import annotations

from httpx import AsyncClient
from prometheus_client import REGISTRY


def _head_count(route: str) -> float:
    value = REGISTRY.get_sample_value(
        "chainconsult_http_requests_total", {"method": "HEAD", "route": route, "status": "200"}
    )
    return value or 0.0


async def test_head_answers_like_get_without_a_body(client: AsyncClient) -> None:
    counted = _head_count("/api/v2/experts")

    get = await client.get("/api/v2/experts")
    head = await client.head("/api/v2/experts")

    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    for name in ("content-type", "etag", "cache-control", "api-version", "ratelimit-policy"):
        assert head.headers[name] == get.headers[name], name
    assert head.headers["x-request-id"] != get.headers["x-request-id"]
    assert _head_count("/api/v2/experts") == counted + 1


async def test_head_of_a_v1_list_and_a_probe(client: AsyncClient) -> None:
    v1 = await client.head("/api/v1/experts?page=1&per_page=5")
    ready = await client.head("/readyz")

    assert v1.status_code == 200
    assert v1.content == b""
    assert v1.headers["deprecation"].startswith("@")
    assert "x-total-count" in v1.headers
    assert ready.status_code == 200
    assert ready.content == b""


async def test_head_where_there_is_no_get_is_405(client: AsyncClient) -> None:
    response = await client.head("/api/v2/auth/login")

    assert response.status_code == 405
    assert response.content == b""
