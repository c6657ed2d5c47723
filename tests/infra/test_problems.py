"""Bad input gets a 4xx problem, never a 500, and nothing is stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from starlette.types import Receive, Scope, Send

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


async def test_a_crash_in_any_middleware_is_a_500_problem_with_the_request_id(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every layer of the stack in turn is made to crash (a fault no real input produces on
    demand): the caller still gets the one 500 problem, naming its request id, under the
    platform's Server header; never the server's text/plain page."""
    layers = {middleware.cls for middleware in create_app(settings).user_middleware}
    answers: dict[str, tuple[Any, ...]] = {}
    for layer in layers:
        original = layer.__call__

        async def crash(
            self: Any, scope: Scope, receive: Receive, send: Send, original: Any = original
        ) -> None:
            if scope["type"] == "http":
                raise RuntimeError("secret internals")
            await original(self, scope, receive, send)

        with monkeypatch.context() as patch:
            patch.setattr(layer, "__call__", crash)
            app = create_app(settings)
            async with LifespanManager(app) as manager:
                # Starlette's outermost layer re-raises after answering (for the server's log).
                transport = ASGITransport(app=manager.app, raise_app_exceptions=False)
                async with AsyncClient(transport=transport, base_url="http://testserver") as http:
                    response = await http.get("/api/v2/experts")
        problem = response.headers.get("content-type") == "application/problem+json"
        body = response.json() if problem else {}
        request_id = response.headers.get("x-request-id")
        answers[layer.__name__] = (
            response.status_code,
            response.headers.get("content-type"),
            body.get("type", "").rsplit("/", 1)[-1],
            request_id is not None and body.get("request_id") == request_id,
            response.headers.get("server"),
            "secret internals" in response.text,
        )

    expected = (500, "application/problem+json", "internal-error", True, "chainconsult", False)
    assert answers == dict.fromkeys(answers, expected)
    assert len(answers) >= 10


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
    [error] = response.json()["errors"]
    assert error["pointer"] == "#/display_name"
    assert "U+0000" in error["detail"]
    assert count_rows(database_url, "accounts") == 0


async def test_nul_character_in_a_query_parameter_is_422(client: AsyncClient) -> None:
    response = await client.get("/api/v2/experts", params={"q": "solidity\u0000"})

    assert response.status_code == 422


async def test_method_not_allowed_lists_every_method_of_the_path(client: AsyncClient) -> None:
    # GET and POST of /api/v2/projects are two routes; Starlette's 405 named only the first.
    for path, allowed in (
        ("/api/v2/projects", "GET, HEAD, POST"),
        (f"/api/v2/projects/{uuid.uuid4()}", "GET, HEAD, PATCH"),
        ("/api/health", "GET, HEAD, POST"),
        ("/api/projects", "GET, HEAD, POST"),
    ):
        response = await client.request("PUT", path)

        assert response.status_code == 405, path
        assert response.headers["allow"] == allowed, path
        assert response.headers["content-type"] == "application/problem+json"
