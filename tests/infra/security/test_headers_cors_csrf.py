"""Security headers on every response, CORS for listed origins only, the Origin /
Sec-Fetch-Site half of CSRF defence, and the JSON nesting cap."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import psycopg
from httpx import AsyncClient

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.edge_support import LIMITED, app_client
from tests.helpers import PASSWORD, register, serving

ALLOWED = "https://app.example.com"


async def test_api_responses_carry_strict_security_headers(client: AsyncClient) -> None:
    for response in (await client.get("/livez"), await client.get("/api/v2/nowhere")):
        headers = response.headers
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert headers["cross-origin-resource-policy"] == "same-origin"
        assert "camera=()" in headers["permissions-policy"]
        # The service's name, never the server software's (nor a version).
        assert headers.get_list("server") == ["chainconsult"]
        # HSTS only in production: over plain HTTP in development it would pin localhost.
        assert "strict-transport-security" not in headers


async def test_production_adds_hsts(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, CHAINCONSULT_ENV="production")
    async with app_client(settings) as client:
        response = await client.get("/livez")
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


async def test_status_page_gets_a_csp_that_lets_its_own_scripts_and_styles_run(
    client: AsyncClient,
) -> None:
    response = await client.get("/status")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp


async def test_api_docs_csp_allows_exactly_its_inline_script(client: AsyncClient) -> None:
    response = await client.get("/api/v2/docs")
    assert response.status_code == 200
    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert scripts
    csp = response.headers["content-security-policy"]
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp


async def test_cors_preflight_from_a_listed_origin_is_allowed_and_cached(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, ALLOWED_ORIGINS=ALLOWED)
    async with app_client(settings) as client:
        response = await client.options(
            "/api/v2/auth/logout",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-csrf-token",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-max-age"] == "600"
    assert "x-csrf-token" in response.headers["access-control-allow-headers"].lower()


async def test_cors_gives_an_unlisted_origin_nothing(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, ALLOWED_ORIGINS=ALLOWED)
    async with app_client(settings) as client:
        preflight = await client.options(
            "/api/v2/auth/me",
            headers={
                "Origin": "https://app.example.com.evil.test",
                "Access-Control-Request-Method": "GET",
            },
        )
        simple = await client.get("/livez", headers={"Origin": "https://evil.test"})

    assert preflight.status_code == 400
    assert preflight.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-credentials" not in preflight.headers
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-credentials" not in simple.headers
    assert "Origin" in simple.headers["vary"]


async def test_a_refused_preflight_names_its_request_id_and_path(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, ALLOWED_ORIGINS=ALLOWED)
    async with app_client(settings) as client:
        preflight = await client.options(
            "/api/v2/auth/me",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
        )

    assert preflight.status_code == 400
    problem = preflight.json()
    assert problem["type"].endswith("/cors-refused")
    assert problem["request_id"] == preflight.headers["x-request-id"]
    assert problem["instance"] == "/api/v2/auth/me"


async def test_a_429_is_readable_by_an_allowed_page(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        ALLOWED_ORIGINS=ALLOWED,
        RATE_LIMIT_ANONYMOUS="1/minute",
    )
    async with app_client(settings) as client:
        await client.get(LIMITED, headers={"Origin": ALLOWED})
        refused = await client.get(LIMITED, headers={"Origin": ALLOWED})

    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    exposed = refused.headers["access-control-expose-headers"]
    assert "RateLimit" in exposed
    assert "Retry-After" in exposed


async def _cookie_login(client: AsyncClient) -> str:
    await register(client, email="csrf@example.com")
    response = await client.post(
        "/api/v2/auth/login", json={"email": "csrf@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    return client.cookies["csrf_token"]


async def test_cookie_write_from_another_site_is_refused_even_with_the_token(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, ALLOWED_ORIGINS=ALLOWED)
    async with app_client(settings) as client:
        token = await _cookie_login(client)
        forged = await client.post(
            "/api/v2/auth/logout",
            headers={
                "X-CSRF-Token": token,
                "Origin": "https://evil.test",
                "Sec-Fetch-Site": "cross-site",
            },
        )
        still_in = await client.get("/api/v2/auth/me")
        from_allowed = await client.post(
            "/api/v2/auth/logout",
            headers={"X-CSRF-Token": token, "Origin": ALLOWED, "Sec-Fetch-Site": "cross-site"},
        )

    assert forged.status_code == 403
    assert forged.json()["reason"] == "origin"
    assert still_in.status_code == 200
    assert from_allowed.status_code == 204


async def test_same_origin_cookie_write_with_token_passes(client: AsyncClient) -> None:
    token = await _cookie_login(client)
    response = await client.post(
        "/api/v2/auth/logout",
        headers={
            "X-CSRF-Token": token,
            "Origin": "http://testserver",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert response.status_code == 204


async def test_an_origin_that_is_no_url_is_refused_not_an_error(client: AsyncClient) -> None:
    token = await _cookie_login(client)
    response = await client.post(
        "/api/v2/auth/logout", headers={"X-CSRF-Token": token, "Origin": "http://[x"}
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "origin"


async def test_bearer_requests_are_exempt_from_origin_checks(client: AsyncClient) -> None:
    await register(client, email="bearer@example.com")
    login = await client.post(
        "/api/v2/auth/login", json={"email": "bearer@example.com", "password": PASSWORD}
    )
    client.cookies.clear()
    response = await client.post(
        "/api/v2/auth/logout",
        headers={
            "Authorization": f"Bearer {login.json()['access_token']}",
            "Origin": "https://evil.test",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert response.status_code == 204


async def test_json_nested_past_the_cap_is_a_400_and_nothing_is_stored(
    client: AsyncClient, database_url: str
) -> None:
    fields = '"email": "deep@example.com", "password": "long enough password", "display_name": "D"'
    deep = "{" + fields + ', "x": ' + "[" * 40 + "]" * 40 + "}"
    response = await client.post(
        "/api/v2/auth/register", content=deep, headers={"content-type": "application/json"}
    )
    huge = await client.post(
        "/api/v2/auth/register",
        content="[" * 500_000,
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "nests deeper than 32" in response.json()["detail"]
    assert huge.status_code == 400
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (0,)


async def test_json_within_the_cap_reaches_validation(client: AsyncClient) -> None:
    body = '{"email": "ok@example.com", "password": "x", "nested": ' + "[" * 30 + "]" * 30 + "}"
    response = await client.post(
        "/api/v2/auth/register", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_docs_pages_behind_a_path_prefix_load_their_assets_there(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None)
    app = create_app(settings)
    async with serving(app, root_path="/prefix") as client:
        plain = await client.get("/api/v2/docs")
        for path in ("/api/v2/docs", "/api/v1/docs", "/api/docs"):
            page = await client.get(path)
            assets = re.findall(r'(?:href|src)="([^"]+)"', page.text)
            assert assets, path
            assert all(url.startswith("/prefix/api-docs/static/") for url in assets), assets
            # The inline script (and so its CSP hash) is the same as without the prefix.
            assert (
                page.headers["content-security-policy"] == plain.headers["content-security-policy"]
            )
