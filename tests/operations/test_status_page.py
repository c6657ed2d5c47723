"""/status without a browser: who gets the login form, what an admin gets, the assets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import structlog
from httpx import AsyncClient

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.helpers import login, promote_to_admin, register, serving


async def test_status_shows_the_login_form_without_a_login(client: AsyncClient) -> None:
    response = await client.get("/status")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="login-form"' in response.text
    # No inline script or style: a strict CSP (script-src 'self') must hold.
    assert "<script>" not in response.text
    assert "<style" not in response.text
    assert 'src="/status/static/status.js"' in response.text


async def test_status_refuses_a_non_admin(client: AsyncClient) -> None:
    account = await register(client)
    headers = await login(client, account["email"])

    response = await client.get("/status", headers=headers)

    assert response.status_code == 403
    assert "needs an admin account" in response.text


async def test_status_refusals_are_the_pages_its_openapi_entry_documents(
    client: AsyncClient,
) -> None:
    document = (await client.get("/api/v2/openapi.json")).json()
    documented = document["paths"]["/status"]["get"]["responses"]
    answers = {
        "no login": await client.get("/status"),
        "ended login": await client.get("/status", headers={"Authorization": "Bearer gone"}),
    }
    account = await register(client)
    answers["not an admin"] = await client.get(
        "/status", headers=await login(client, account["email"])
    )

    seen = {
        case: (response.status_code, response.headers["content-type"].split(";")[0])
        for case, response in answers.items()
    }
    assert seen == {
        "no login": (401, "text/html"),
        "ended login": (401, "text/html"),
        "not an admin": (403, "text/html"),
    }
    for status, media_type in seen.values():
        assert media_type in documented[str(status)]["content"]


async def test_status_renders_the_dashboard_for_an_admin(
    client: AsyncClient, database_url: str
) -> None:
    account = await register(client)
    promote_to_admin(database_url, account["id"])
    headers = await login(client, account["email"])

    page = await client.get("/status", headers=headers)
    panels = await client.get("/status/panels", headers=headers)

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    for element in (
        "overall-status",
        "request-rate",
        "latency-p95",
        "error-rate",
        "cache-hit-rate",
        "queue-depth",
        "health-checks",
        "no-alerts",
    ):
        assert f'id="{element}"' in page.text, element
    assert panels.status_code == 200
    assert 'id="health-checks"' in panels.text
    assert "<html" not in panels.text


async def test_status_assets_are_served_by_the_app(client: AsyncClient) -> None:
    script = await client.get("/status/static/status.js")
    style = await client.get("/status/static/status.css")

    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")


@pytest.fixture
async def logging_client(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, LOG_TO_DATABASE="true")
    app = create_app(settings)
    async with serving(app) as http:
        yield http


async def test_dashboard_lists_slow_queries_failed_jobs_and_stored_errors(
    logging_client: AsyncClient, database_url: str
) -> None:
    account = await register(logging_client)
    promote_to_admin(database_url, account["id"])
    headers = await login(logging_client, account["email"])
    # What the database layer logs for a slow statement (event "slow_query": sql, duration_ms).
    structlog.get_logger("chainconsult.db").warning(
        "slow_query", sql="SELECT pg_sleep(:seconds)", duration_ms=812.4
    )
    libpq = database_url.replace("+psycopg", "")
    with psycopg.connect(libpq, autocommit=True) as conn:
        # A job as procrastinate leaves it after its last attempt failed (its triggers add
        # the deferred, started and failed events).
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, attempts) "
            "VALUES ('default', 'send_welcome_email', '{}', 'todo', 5);"
            "UPDATE procrastinate_jobs SET status = 'doing';"
            "UPDATE procrastinate_jobs SET status = 'failed';"
        )
    for _ in range(50):
        page = await logging_client.get("/status/panels", headers=headers)
        if "pg_sleep" in page.text:
            break
        await asyncio.sleep(0.1)

    assert page.status_code == 200
    slow = page.text.split('id="slow-queries"', 1)[1]
    assert "SELECT pg_sleep(:seconds)" in slow
    assert "812.4 ms" in slow
    failed = page.text.split('id="failed-jobs"', 1)[1]
    assert "send_welcome_email" in failed
    problems = page.text.split('id="problems"', 1)[1]
    assert "slow_query" in problems
