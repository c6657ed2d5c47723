"""/status without a browser: who gets the login form, what an admin gets, the assets."""

from __future__ import annotations

from httpx import AsyncClient

from tests.helpers import login, promote_to_admin, register


async def test_status_shows_the_login_form_without_a_login(client: AsyncClient) -> None:
    response = await client.get("/status")

    assert response.status_code == 401
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
