"""Bad input gets a 4xx problem, never a 500, and nothing is stored."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.helpers import count_rows, serving


async def test_malformed_json_is_a_400_problem(client: AsyncClient, database_url: str) -> None:
    response = await client.post(
        "/api/v2/auth/register",
        content=b'{"email": "x@example.com", ',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Malformed JSON"
    assert count_rows(database_url, "accounts") == 0


async def test_wrong_content_type_is_415(client: AsyncClient, database_url: str) -> None:
    response = await client.post(
        "/api/v2/auth/register",
        content=b"email=x@example.com",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 415
    assert count_rows(database_url, "accounts") == 0


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_ten_megabyte_body_is_413(
    client: AsyncClient, database_url: str, declared: bool
) -> None:
    payload = b'{"email": "' + b"a" * (10 * 1024 * 1024) + b'"}'

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    response = await client.post(
        "/api/v2/auth/register",
        content=payload if declared else chunks(),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["status"] == 413
    assert count_rows(database_url, "accounts") == 0


async def test_unknown_path_is_a_404_problem_with_request_id(client: AsyncClient) -> None:
    response = await client.get("/api/v2/nowhere", headers={"X-Request-ID": "caller-id-12345"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "caller-id-12345"
    assert response.json()["request_id"] == "caller-id-12345"


async def test_malformed_request_id_is_replaced(client: AsyncClient) -> None:
    response = await client.get("/livez", headers={"X-Request-ID": "bad id\twith spaces"})

    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


async def test_crash_becomes_500_problem_without_trace(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/api/v2/test-crash")
    async def crash() -> None:
        raise RuntimeError("secret internals")

    async with serving(app) as http:
        response = await http.get("/api/v2/test-crash")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_nul_character_in_text_is_422_and_nothing_stored(
    client: AsyncClient, database_url: str
) -> None:
    response = await client.post(
        "/api/v2/auth/register",
        json={
            "email": "nul@example.com",
            "password": "correct horse battery staple",
            "display_name": "bad\u0000name",
        },
    )

    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]
    assert count_rows(database_url, "accounts") == 0


async def test_nul_character_in_a_query_parameter_is_422(client: AsyncClient) -> None:
    response = await client.get("/api/v2/experts", params={"q": "solidity\u0000"})

    assert response.status_code == 422
