"""The client IP comes from X-Forwarded-For only through TRUSTED_PROXIES; BLOCKED_IPS are
refused before any other work."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.conftest import make_settings
from tests.edge_support import LIMITED, app_client
from tests.helpers import PASSWORD, register


async def test_blocked_ip_gets_403_before_anything_else(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, BLOCKED_IPS="198.51.100.0/24")
    async with app_client(settings, client_ip="198.51.100.7") as client:
        response = await client.post(
            "/api/v2/auth/register",
            json={"email": "x@example.com", "password": PASSWORD, "display_name": "X"},
        )

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/ip-blocked")
    # Refused outside everything else: not rate-counted, no account written.
    assert "ratelimit" not in response.headers
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (0,)


async def test_blocked_ip_403_names_its_request_id_under_the_platform_headers(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, BLOCKED_IPS="198.51.100.0/24")
    async with app_client(settings, client_ip="198.51.100.7") as client:
        response = await client.get(LIMITED, headers={"X-Request-ID": "blocked-caller-1"})

    assert response.status_code == 403
    assert response.headers["x-request-id"] == "blocked-caller-1"
    assert response.json()["request_id"] == "blocked-caller-1"
    assert response.headers["server"] == "chainconsult"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    database_url: str, tmp_path: Path
) -> None:
    blocked = {"BLOCKED_IPS": "203.0.113.9", "REDIS_URL": None}
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    untrusted = make_settings(database_url, tmp_path, **blocked)
    async with app_client(untrusted, client_ip="10.0.0.2") as client:
        # Anyone can write the header; from an untrusted peer it changes nothing.
        assert (await client.get("/livez", headers=spoofed)).status_code == 200

    trusted = make_settings(database_url, tmp_path, TRUSTED_PROXIES="10.0.0.0/8", **blocked)
    async with app_client(trusted, client_ip="10.0.0.2") as client:
        assert (await client.get("/livez", headers=spoofed)).status_code == 403
        # The client's own claims left of the real client address are not believed.
        chained = {"X-Forwarded-For": "203.0.113.9, 192.0.2.44, 10.1.1.1"}
        assert (await client.get("/livez", headers=chained)).status_code == 200


async def test_login_records_the_forwarded_client_ip(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, TRUSTED_PROXIES="127.0.0.1")
    async with app_client(settings) as client:
        await register(client, email="ip@example.com")
        response = await client.post(
            "/api/v2/auth/login",
            json={"email": "ip@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "[2001:db8::7]:4711"},
        )
    assert response.status_code == 200
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT ip FROM account_sessions").fetchone() == ("2001:db8::7",)


async def test_forwarded_for_hop_that_is_not_an_ip_is_a_400(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, TRUSTED_PROXIES="127.0.0.1")
    async with app_client(settings) as client:
        response = await client.get("/livez", headers={"X-Forwarded-For": "not-an-ip"})

    assert response.status_code == 400
    assert response.json()["type"].endswith("/bad-forwarded-for")


async def test_trusted_ip_behind_a_proxy_is_exempt_from_limits(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        TRUSTED_PROXIES="127.0.0.1",
        TRUSTED_IPS="192.0.2.0/24",
        RATE_LIMIT_ANONYMOUS="1/minute",
    )
    async with app_client(settings) as client:
        office = {"X-Forwarded-For": "192.0.2.5"}
        stranger = {"X-Forwarded-For": "198.51.100.5"}
        office_statuses = [
            (await client.get(LIMITED, headers=office)).status_code for _ in range(3)
        ]
        stranger_statuses = [
            (await client.get(LIMITED, headers=stranger)).status_code for _ in range(2)
        ]

    assert office_statuses == [200, 200, 200]
    assert stranger_statuses == [200, 429]
