"""A private PostgreSQL used by the app is stopped and started again: health turns 503 fast,
a critical alert reaches Slack and PagerDuty receivers while the database is down (also after
the private Redis that coordinated the evaluators died), and the resolution follows once it is
back. The machine's own PostgreSQL and Redis are never touched."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from chainconsult.app import create_app
from chainconsult.infra.db.migrate import migrate
from chainconsult.infra.embedded.postgres import EmbeddedPostgres
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings, missing_service
from tests.helpers import login, promote_to_admin, register, serving
from tests.infra.monitoring.receiver import Receiver, http_receiver
from tests.infra.monitoring.test_multiprocess_metrics import free_port

pytestmark = pytest.mark.slow
ROUTING_KEY = "R0UTINGKEY0000000000000000000000"


class PrivatePostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server = EmbeddedPostgres(data_dir)
        self.url = self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = EmbeddedPostgres(self.data_dir)
        assert self.server.start() == self.url


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    # Unix socket paths are limited to ~100 bytes: a short directory.
    data_dir = Path(tempfile.mkdtemp(prefix="ccdown"))
    server = PrivatePostgres(data_dir)
    migrate(server.url.replace("postgresql://", "postgresql+psycopg://", 1), echo=lambda _: None)
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


@pytest.fixture
async def clients(
    private_postgres: PrivatePostgres, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """One app; a client from a TRUSTED_IPS address and one from elsewhere."""
    settings = make_settings(
        private_postgres.url,
        tmp_path,
        REDIS_URL=None,
        ALERT_EVALUATION_INTERVAL="0.25",
        HEALTH_CACHE_SECONDS="0.5",
        ALERT_WEBHOOK_URLS=f"{receiver.base_url}/slack",
        PAGERDUTY_EVENTS_URL=f"{receiver.base_url}/pagerduty",
        PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
        TRUSTED_IPS="127.0.0.1",
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        trusted = ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        outside = ASGITransport(app=manager.app, client=("192.0.2.10", 50000))
        async with (
            AsyncClient(transport=trusted, base_url="http://testserver") as trusted_http,
            AsyncClient(transport=outside, base_url="http://testserver") as outside_http,
        ):
            yield trusted_http, outside_http


def assert_pagerduty_event(event: dict[str, Any], action: str) -> None:
    """The Events API v2 contract (developer.pagerduty.com, "Send an Alert Event")."""
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == action
    assert 0 < len(event["dedup_key"]) <= 255
    if action == "trigger":
        payload = event["payload"]
        assert 0 < len(payload["summary"]) <= 1024
        assert payload["source"]
        assert payload["severity"] in {"critical", "error", "warning", "info"}


async def wait_until(check: Any, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


async def test_database_down_fails_health_pages_and_resolves(
    clients: tuple[AsyncClient, AsyncClient], private_postgres: PrivatePostgres, receiver: Receiver
) -> None:
    app_client, outside = clients
    account = await register(outside)
    promote_to_admin(private_postgres.url, account["id"])
    admin = await login(outside, account["email"])
    assert (await app_client.get("/readyz")).status_code == 200
    assert (await app_client.get("/api/health")).status_code == 200

    await asyncio.to_thread(private_postgres.stop)
    stopped_at = time.monotonic()

    async def both_fail() -> bool:
        ready = await app_client.get("/readyz")
        health = await app_client.get("/api/health")
        return ready.status_code == 503 and health.status_code == 503

    await wait_until(both_fail, timeout=5.0)
    assert time.monotonic() - stopped_at < 5.0
    health = (await app_client.get("/api/health")).json()
    assert health["status"] == "fail"
    assert "database unreachable" in health["notes"]

    # The page goes out while the database is still down.
    trigger = await asyncio.to_thread(
        receiver.wait_for, "/pagerduty", lambda e: e["event_action"] == "trigger"
    )
    assert_pagerduty_event(trigger, "trigger")
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["class"] == "database_down"
    slack = await asyncio.to_thread(
        receiver.wait_for, "/slack", lambda m: "[FIRING] [CRITICAL]" in m["text"]
    )
    assert "PostgreSQL is unreachable" in slack["text"]
    assert slack["blocks"][0]["type"] == "section"
    assert (await app_client.get("/readyz")).status_code == 503

    # Operators still see what is going on: TRUSTED_IPS get the detailed report with the
    # alert (kept in memory); a login that cannot be checked is a clear 503, not a 500.
    detailed = await app_client.post("/api/health")
    assert detailed.status_code == 503
    assert detailed.headers["content-type"] == "application/health+json"
    # (A busy disk may add its own alert; the outage's is the one this test is about.)
    assert "database_down" in [alert["rule"] for alert in detailed.json()["alerts"]]
    refused = await outside.post("/api/health", headers=admin)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    # Each 503 is answered in a media type its OpenAPI document names.
    document = (await app_client.get("/api/v2/openapi.json")).json()
    for method, path, answer in [
        ("get", "/api/health", await app_client.get("/api/health")),
        ("get", "/readyz", await app_client.get("/readyz")),
        ("post", "/api/health", detailed),
        ("post", "/api/health", refused),
    ]:
        documented = document["paths"][path][method]["responses"]["503"]["content"]
        assert answer.headers["content-type"] in documented, (method, path)
    assert "database is unreachable" in refused.json()["detail"]
    page = await outside.get("/status", headers=admin)
    assert page.status_code == 503
    assert "database is unreachable" in page.text

    await asyncio.to_thread(private_postgres.start)

    resolve = await asyncio.to_thread(
        receiver.wait_for, "/pagerduty", lambda e: e["event_action"] == "resolve"
    )
    assert_pagerduty_event(resolve, "resolve")
    assert resolve["dedup_key"] == trigger["dedup_key"]
    await asyncio.to_thread(receiver.wait_for, "/slack", lambda m: "[RESOLVED]" in m["text"])
    # One page and one resolution: no repeats while the alert kept firing.
    assert [e["event_action"] for e in receiver.at("/pagerduty")] == ["trigger", "resolve"]

    async def ready_again() -> bool:
        return (await app_client.get("/readyz")).status_code == 200

    await wait_until(ready_again, timeout=10.0)
    # What happened while the database was down was written once it came back.
    with psycopg.connect(private_postgres.url) as conn:
        rows = conn.execute(
            "SELECT severity, status, first_seen_at, resolved_at, notified_channels "
            "FROM alerts WHERE rule = 'database_down'"
        ).fetchall()
    assert len(rows) == 1
    severity, status, first_seen, resolved_at, channels = rows[0]
    assert (severity, status) == ("critical", "resolved")
    assert resolved_at > first_seen
    assert sorted(channels) == ["pagerduty", "webhook"]


async def test_database_down_resolves_once_after_a_restart_during_the_outage(
    private_postgres: PrivatePostgres, receiver: Receiver, tmp_path: Path
) -> None:
    settings = make_settings(
        private_postgres.url,
        tmp_path,
        REDIS_URL=None,
        ALERT_EVALUATION_INTERVAL="0.25",
        HEALTH_CACHE_SECONDS="0.5",
        ALERT_WEBHOOK_URLS=f"{receiver.base_url}/slack",
        PAGERDUTY_EVENTS_URL=f"{receiver.base_url}/pagerduty",
        PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
    )
    async with LifespanManager(create_app(settings)):
        await asyncio.to_thread(private_postgres.stop)
        trigger = await asyncio.to_thread(
            receiver.wait_for, "/pagerduty", lambda e: e["event_action"] == "trigger"
        )

    # The service restarts while the database is still down, then the database comes back.
    restarted = create_app(settings)
    async with LifespanManager(restarted) as manager:
        store = resources_of(restarted).monitoring.evaluator.store

        async def outage_known() -> bool:
            return [alert.rule for alert in store.active.values()] == ["database_down"]

        await wait_until(outage_known, timeout=5.0)
        await asyncio.to_thread(private_postgres.start)
        resolve = await asyncio.to_thread(
            receiver.wait_for, "/pagerduty", lambda e: e["event_action"] == "resolve"
        )
        async with AsyncClient(
            transport=ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http:

            async def ready_again() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await wait_until(ready_again, timeout=10.0)

    assert resolve["dedup_key"] == trigger["dedup_key"]
    assert [e["event_action"] for e in receiver.at("/pagerduty")] == ["trigger", "resolve"]
    texts = [message["text"] for message in receiver.at("/slack")]
    assert [("[FIRING]" in t, "[RESOLVED]" in t) for t in texts] == [(True, False), (False, True)]
    with psycopg.connect(private_postgres.url) as conn:
        rows = conn.execute(
            "SELECT status, notified_channels FROM alerts WHERE rule = 'database_down'"
        ).fetchall()
    assert [(status, sorted(channels)) for status, channels in rows] == [
        ("resolved", ["pagerduty", "webhook"])
    ]


class PrivateRedis:
    def __init__(self, binary: str) -> None:
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        missing_service("redis-server binary (apt-get install redis-server)")
    server = PrivateRedis(str(binary))
    yield server
    server.kill()


async def test_database_down_still_pages_after_redis_died(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        private_postgres.url,
        tmp_path,
        REDIS_URL=private_redis.url,
        ALERT_EVALUATION_INTERVAL="0.25",
        HEALTH_CACHE_SECONDS="0.5",
        ALERT_WEBHOOK_URLS=f"{receiver.base_url}/slack",
        PAGERDUTY_EVENTS_URL=f"{receiver.base_url}/pagerduty",
        PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
    )
    app = create_app(settings)
    async with serving(app) as http:
        lease = resources_of(app).monitoring.evaluator.lease

        async def coordinated() -> bool:
            return bool(lease.coordinated)

        await wait_until(coordinated, timeout=5.0)  # the evaluator holds the Redis lease
        private_redis.kill()
        await asyncio.to_thread(private_postgres.stop)

        trigger = await asyncio.to_thread(
            receiver.wait_for, "/pagerduty", lambda e: e["event_action"] == "trigger"
        )
        assert_pagerduty_event(trigger, "trigger")
        assert trigger["payload"]["class"] == "database_down"
        assert not lease.coordinated  # evaluating alone now
        health = (await http.get("/api/v2/health")).json()
        assert health["status"] == "fail"
        assert health["checks"]["redis:responseTime"][0]["status"] == "warn"

        await asyncio.to_thread(private_postgres.start)
        await asyncio.to_thread(
            receiver.wait_for, "/pagerduty", lambda e: e["event_action"] == "resolve"
        )
    actions = [event["event_action"] for event in receiver.at("/pagerduty")]
    assert actions == ["trigger", "resolve"]
