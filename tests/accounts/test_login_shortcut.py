"""The LoginBusyShortcut: while the process's login gate is full, a login is answered 503
login-busy before its body is read or routed, and the answer cannot be told apart from the
gate's own in the login (status, headers, body, metrics label); the rate limit counts it
first, and other requests, or logins once the gate has room, go the normal way."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.middleware import Middleware

from chainconsult.accounts.login_shortcut import LoginBusyShortcut
from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.conftest import make_settings
from tests.helpers import PASSWORD, serving
from tests.infra.health.test_probe_shortcut import RoutingSpy

LOGIN = "/api/v2/auth/login"
WRONG = {"email": "victim@example.com", "password": "not the password at all"}
PER_RESPONSE = {"date", "x-request-id", "content-length", "ratelimit"}
"""Headers that differ from one answer to the next (``ratelimit`` by the seconds left)."""


def _settings(database_url: str, tmp_path: Path, **env: Any) -> Settings:
    values: dict[str, Any] = {"REDIS_URL": None, "LOGIN_DATABASE_SLOTS": 1, **env}
    return make_settings(database_url, tmp_path, **values)


@asynccontextmanager
async def spied(
    settings: Settings, *, shortcut: bool
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, list[tuple[str, str]]]]:
    app = create_app(settings)
    if not shortcut:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not LoginBusyShortcut]
    seen: list[tuple[str, str]] = []
    app.user_middleware.append(Middleware(RoutingSpy, seen=seen))
    async with serving(app) as client:
        # Both apps share the database: the second finds the account there (409).
        account = {"email": WRONG["email"], "password": PASSWORD, "display_name": "victim"}
        assert (await client.post("/api/v2/auth/register", json=account)).status_code in {201, 409}
        seen.clear()
        yield client, app, seen


@asynccontextmanager
async def full_gate(app: FastAPI) -> AsyncIterator[None]:
    """The gate's one slot and its one place in the queue taken, as a burst takes them."""
    gate = app.state.login_gate
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.admitted(60):
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    try:
        async with asyncio.timeout(10):
            while not gate.full:
                await asyncio.sleep(0.01)
        yield
    finally:
        release.set()
        await asyncio.gather(*holders)


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], dict[str, Any]]:
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in PER_RESPONSE)
    body = response.json()
    body.pop("request_id")
    return response.status_code, headers, body


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _shed_count() -> float:
    return _sample("chainconsult_http_requests_total", method="POST", route=LOGIN, status="503")


def _failed_logins_audited(database_url: str) -> int:
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_login_at_a_full_gate_is_answered_as_the_gate_answers_it_without_routing(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(database_url, tmp_path, LOGIN_HASH_WAIT_MS=3000)
    shed_before = _shed_count()
    failures_before = _sample("chainconsult_auth_failures_total")
    async with (
        spied(settings, shortcut=True) as (fast, fast_app, fast_seen),
        spied(settings, shortcut=False) as (routed, routed_app, routed_seen),
    ):
        async with full_gate(fast_app), full_gate(routed_app):
            shed = await fast.post(LOGIN, json=WRONG)
            v1_shed = await fast.post("/api/v1/auth/login", json=WRONG)
            gated = await routed.post(LOGIN, json=WRONG)
            registered = await fast.post(
                "/api/v2/auth/register",
                json={"email": "other@example.com", "password": PASSWORD, "display_name": "o"},
            )
            fast_routed = list(fast_seen)
            shed_counted = _shed_count() - shed_before
            failures_counted = _sample("chainconsult_auth_failures_total") - failures_before
        after = await fast.post(LOGIN, json=WRONG)

    assert shed.status_code == 503
    assert shed.headers["content-type"] == "application/problem+json"
    assert shed.headers["Retry-After"] == "3"
    assert shed.headers["x-content-type-options"] == "nosniff"
    assert "ratelimit" in shed.headers
    assert shed.json()["reason"] == "login-busy"
    assert shed.json()["retry_after"] == 3
    assert shed.json()["request_id"] == shed.headers["x-request-id"]
    assert comparable(shed) == comparable(gated)
    # v1 logins reach the shortcut rewritten onto the v2 route, and leave in v1 form.
    assert v1_shed.status_code == 503
    assert v1_shed.headers["api-version"] == "1"
    # Neither login of the fast app was routed; the other app's reached the gate in the route.
    assert fast_routed == [("POST", "/api/v2/auth/register")]
    assert routed_seen == [("POST", LOGIN)]
    # Both counted under the route's template; neither checked a password.
    assert shed_counted == 3
    assert failures_counted == 0
    # Only logins are shed, and only while the gate is full.
    assert registered.status_code == 201
    assert after.status_code == 401
    assert _failed_logins_audited(database_url) == 1


async def test_a_shed_login_is_counted_by_the_rate_limit_and_its_body_never_read(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(database_url, tmp_path, RATE_LIMIT_AUTH="3/minute")
    async with spied(settings, shortcut=True) as (client, app, seen), full_gate(app):
        # The registration was the first of three. Not JSON at all: the route would answer
        # 400 after reading it.
        unread = await client.post(
            LOGIN, content=b"{not json", headers={"content-type": "application/json"}
        )
        shed = await client.post(LOGIN, json=WRONG)
        limited = await client.post(LOGIN, json=WRONG)

    assert unread.status_code == 503
    assert unread.json()["reason"] == "login-busy"
    assert shed.status_code == 503
    assert limited.status_code == 429
    assert limited.json()["type"].endswith("/rate-limited")
    assert seen == []


async def test_a_burst_shed_at_the_edge_checks_no_more_passwords_than_the_throttle_allows(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(
        database_url,
        tmp_path,
        LOGIN_DATABASE_SLOTS=4,
        LOGIN_THROTTLE_FREE_FAILURES=2,
        LOGIN_THROTTLE_LOCKOUT_FAILURES=4,
        LOGIN_HASH_WAIT_MS=60_000,
        TRUSTED_PROXIES="127.0.0.1/32",
        RATE_LIMIT_AUTH="1000/minute",
        RATE_LIMIT_ANONYMOUS="1000/minute",
    )
    async with spied(settings, shortcut=True) as (client, _, seen):
        answers = await asyncio.gather(
            *(
                client.post(LOGIN, json=WRONG, headers={"X-Forwarded-For": f"198.51.100.{n % 12}"})
                for n in range(200)
            )
        )

    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {401, 429, 503}
    # Most of the burst never reached the route: the gate's slots and queue were taken.
    routed = seen.count(("POST", LOGIN))
    assert statuses[503] >= 200 - routed > 100
    checked = statuses[401]
    assert 0 < checked <= settings.login_throttle.lockout_failures
    assert _failed_logins_audited(database_url) == checked
