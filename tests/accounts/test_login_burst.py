"""Login bursts: every attempt is counted before its password is checked, so a burst cannot
check more passwords than the throttle allows; a login waiting for the hasher, or for one of
the few database slots of logins, holds no database connection, and one that would wait too
long is shed with 503."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest

from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from chainconsult.infra.security.passwords import hashing_limiter
from tests.accounts.conftest import FrozenClock
from tests.conftest import make_settings
from tests.edge_support import app_client
from tests.helpers import PASSWORD, login, register, serving

WRONG = "not the password at all"
VICTIM = "victim@example.com"
SOURCES = [f"198.51.100.{n}" for n in range(1, 13)]
"""Twelve source addresses, told apart by X-Forwarded-For from a trusted proxy."""


def _settings(database_url: str, tmp_path: Path, **env: Any) -> Any:
    values: dict[str, Any] = {
        "REDIS_URL": None,
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "LOGIN_THROTTLE_FREE_FAILURES": 2,
        "LOGIN_THROTTLE_LOCKOUT_FAILURES": 4,
        # Long enough, and enough slots, that nothing is shed unless a test wants it.
        "LOGIN_HASH_WAIT_MS": 60_000,
        "LOGIN_DATABASE_SLOTS": 1000,
    }
    values.update(env)
    return make_settings(database_url, tmp_path, **values)


class HeldHasher:
    """Every hashing slot of this event loop taken by the test, as a burst would take them."""

    def __init__(self) -> None:
        self.limiter = hashing_limiter()
        self.holders = [object() for _ in range(int(self.limiter.total_tokens))]

    async def __aenter__(self) -> HeldHasher:
        for holder in self.holders:
            await self.limiter.acquire_on_behalf_of(holder)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        while self.holders:
            self.limiter.release_on_behalf_of(self.holders.pop())

    @property
    def waiting(self) -> int:
        return self.limiter.statistics().tasks_waiting


async def _attempt(
    client: httpx.AsyncClient, email: str, password: str, *, source: str = SOURCES[0]
) -> httpx.Response:
    return await client.post(
        "/api/v2/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": source},
    )


async def _until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    with anyio.move_on_after(timeout):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), f"timed out waiting until {what}"


async def _first_answer_with(
    tasks: Iterable[Awaitable[httpx.Response]], status: int, timeout: float = 30.0
) -> httpx.Response:
    async with asyncio.timeout(timeout):
        for done in asyncio.as_completed(list(tasks)):
            response = await done
            if response.status_code == status:
                return response
    raise AssertionError(f"no answer had status {status}")


def _failed_logins_audited(database_url: str) -> int:
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_burst_of_wrong_logins_checks_at_most_the_lockout_threshold(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = _settings(database_url, tmp_path)
    async with app_client(settings) as client:
        await register(client, email=VICTIM)
        burst = [
            asyncio.ensure_future(_attempt(client, VICTIM, WRONG, source=SOURCES[n % 12]))
            for n in range(200)
        ]
        try:
            await _first_answer_with(burst, 429)
            right_inside = await _attempt(client, VICTIM, PASSWORD, source=SOURCES[5])
        finally:
            answers = await asyncio.gather(*burst)
        right_after = await _attempt(client, VICTIM, PASSWORD, source=SOURCES[7])
        clock.advance(int(right_after.headers["Retry-After"]))
        right_once_over = await _attempt(client, VICTIM, PASSWORD, source=SOURCES[7])

    statuses = Counter(answer.status_code for answer in answers)
    checked = statuses[401]
    assert set(statuses) == {401, 429}
    assert checked <= settings.login_throttle.lockout_failures
    # With the clock standing still, exactly the free failures: every later one must wait.
    assert checked == settings.login_throttle.free_failures
    assert _failed_logins_audited(database_url) == checked
    assert right_inside.status_code == 429
    assert right_inside.json()["reason"] == "login-throttled"
    assert right_after.status_code == 429
    assert right_once_over.status_code == 200


async def test_logins_waiting_for_the_hasher_hold_no_database_connection(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(
        database_url,
        tmp_path,
        DATABASE_MAX_CONNECTIONS=2,
        DATABASE_MAX_OVERFLOW=0,
        DATABASE_CONNECTION_TIMEOUT=5000,
    )
    app = create_app(settings)
    async with serving(app) as client:
        reader = await register(client)
        headers = await login(client, reader["email"])
        client.cookies.clear()
        async with HeldHasher() as hasher:
            logins = [
                asyncio.ensure_future(
                    _attempt(client, f"guess-{n}@example.com", WRONG, source=SOURCES[n])
                )
                for n in range(12)
            ]
            try:
                await _until(lambda: hasher.waiting == len(logins), "every login waits to hash")
                held = resources_of(app).engine.pool.checkedout()
                # Distinct queries miss the cache: each read needs a database connection.
                reads = [
                    await client.get(f"/api/v2/experts?q={uuid.uuid4().hex}", headers=headers)
                    for _ in range(5)
                ]
                ready = await client.get("/readyz")
            finally:
                hasher.release()
                answers = await asyncio.gather(*logins)

    assert held == 0
    assert [read.status_code for read in reads] == [200] * 5
    assert ready.status_code == 200
    assert [answer.status_code for answer in answers] == [401] * 12


def _waiting_on_a_row_lock(database_url: str) -> int:
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_logins_queued_on_one_account_leave_the_pool_to_other_requests(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(
        database_url,
        tmp_path,
        DATABASE_MAX_CONNECTIONS=3,
        DATABASE_MAX_OVERFLOW=0,
        DATABASE_CONNECTION_TIMEOUT=2000,
        LOGIN_DATABASE_SLOTS=1,
    )
    app = create_app(settings)
    async with serving(app) as client:
        await register(client, email=VICTIM)
        reader = await register(client)
        headers = await login(client, reader["email"])
        client.cookies.clear()
        await _attempt(client, VICTIM, WRONG)  # the account's counter row now exists
        # A transaction holding the counter rows stands for the attempts queued on them.
        with psycopg.connect(database_url.replace("+psycopg", "")) as blocker:
            blocker.execute("SELECT * FROM login_failure_counters FOR UPDATE")
            logins = [
                asyncio.ensure_future(_attempt(client, VICTIM, WRONG, source=SOURCES[n]))
                for n in range(8)
            ]
            try:
                await _until(
                    lambda: _waiting_on_a_row_lock(database_url) == 1, "one login waits on the row"
                )
                await asyncio.sleep(0.2)  # the others reach the gate meanwhile
                held = resources_of(app).engine.pool.checkedout()
                reads = [
                    await client.get(f"/api/v2/experts?q={uuid.uuid4().hex}", headers=headers)
                    for _ in range(3)
                ]
                ready = await client.get("/readyz")
            finally:
                blocker.rollback()
                answers = await asyncio.gather(*logins)

    assert held == 1
    assert [read.status_code for read in reads] == [200] * 3
    assert ready.status_code == 200
    # One slot, one waiting: the six others were shed at once, before touching the database.
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses[503] == 6
    assert set(statuses) - {503} <= {401, 429}
    for answer in answers:
        if answer.status_code == 503:
            assert answer.json()["reason"] == "login-busy"


@pytest.mark.usefixtures("clock")  # no delay runs out while the test looks
async def test_logins_that_would_wait_too_long_for_the_hasher_are_shed_with_503(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(
        database_url,
        tmp_path,
        LOGIN_THROTTLE_FREE_FAILURES=3,
        LOGIN_THROTTLE_LOCKOUT_FAILURES=4,
        LOGIN_HASH_WAIT_MS=50,
    )
    app = create_app(settings)
    async with serving(app) as client:
        await register(client, email=VICTIM)
        async with HeldHasher():
            async with asyncio.timeout(20):
                shed = [await _attempt(client, VICTIM, WRONG) for _ in range(3)]
            directory = await client.get("/api/v2/experts")
        # The shed attempts used up the free failures: shedding buys no extra checks.
        after = await _attempt(client, VICTIM, PASSWORD)

    for answer in shed:
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["reason"] == "login-busy"
        assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert directory.status_code == 200
    assert after.status_code == 429
