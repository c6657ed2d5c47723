"""The evaluator inside real app processes: two nodes never notify twice for one alert (with
Redis through the lease, without it through the database's one firing row per fingerprint),
a real 5xx burst raises the error-rate alert through the metric window, and a few real
(argon2) logins do not raise the latency alert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.infra.monitoring.alerts import RULES, AlertRule, Finding, Severity, Thresholds
from chainconsult.infra.monitoring.lifespan import Monitoring
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings
from tests.helpers import login, register, serving
from tests.infra.monitoring.receiver import Receiver, http_receiver

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


NodeFactory = Callable[..., Any]


@pytest.fixture
async def start_node(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> AsyncIterator[NodeFactory]:
    async with AsyncExitStack() as stack:

        async def start(
            redis_url: str | None, number: int, setup: Callable[[FastAPI], None] | None = None
        ) -> tuple[FastAPI, AsyncClient]:
            settings = make_settings(
                database_url,
                tmp_path / f"node{number}",
                REDIS_URL=redis_url,
                ALERT_EVALUATION_INTERVAL="0.2",
                ALERT_WEBHOOK_URLS=f"{receiver.base_url}/slack",
            )
            app = create_app(settings)
            if setup is not None:
                setup(app)
            http = await stack.enter_async_context(serving(app))
            return app, http

        yield start


def switchable_rule() -> tuple[AlertRule, dict[str, bool]]:
    state = {"firing": True}

    def evaluate(signals: Any, thresholds: Any) -> Finding | None:
        return Finding("the test condition holds") if state["firing"] else None

    return AlertRule("test_condition", Severity.high, evaluate), state


def monitoring(app: FastAPI) -> Monitoring:
    result: Monitoring = resources_of(app).monitoring
    return result


def rows(database_url: str, rule: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        return conn.execute(
            "SELECT status, notified_channels FROM alerts WHERE rule = %s", (rule,)
        ).fetchall()


async def fire_and_resolve_on_two_nodes(
    start_node: NodeFactory, receiver: Receiver, database_url: str, redis_url: str | None
) -> None:
    rule, state = switchable_rule()
    for number in (1, 2):
        app, _ = await start_node(redis_url, number)
        monitoring(app).evaluator.rules = (rule,)

    await asyncio.to_thread(receiver.wait_for, "/slack", lambda m: "[FIRING]" in m["text"])
    await asyncio.sleep(1.0)  # several more evaluations on both nodes
    state["firing"] = False
    await asyncio.to_thread(receiver.wait_for, "/slack", lambda m: "[RESOLVED]" in m["text"])
    await asyncio.sleep(1.0)

    texts = [message["text"] for message in receiver.at("/slack")]
    assert sum("[FIRING]" in text for text in texts) == 1, texts
    assert sum("[RESOLVED]" in text for text in texts) == 1, texts
    assert rows(database_url, "test_condition") == [("resolved", ["webhook"])]


async def test_two_nodes_with_redis_notify_once(
    start_node: NodeFactory, receiver: Receiver, database_url: str, redis_url: str
) -> None:
    await fire_and_resolve_on_two_nodes(start_node, receiver, database_url, redis_url)


async def test_two_nodes_without_redis_notify_once(
    start_node: NodeFactory, receiver: Receiver, database_url: str
) -> None:
    await fire_and_resolve_on_two_nodes(start_node, receiver, database_url, None)


async def test_a_burst_of_server_errors_raises_the_error_rate_alert(
    start_node: NodeFactory, receiver: Receiver, database_url: str
) -> None:
    def add_failing_route(app: FastAPI) -> None:
        async def broken() -> None:
            raise RuntimeError("deliberate failure")

        app.add_api_route("/test/broken", broken)

    app, http = await start_node(None, 1, add_failing_route)
    evaluator = monitoring(app).evaluator
    evaluator.rules = tuple(rule for rule in RULES if rule.name == "high_error_rate")
    evaluator.thresholds = Thresholds(window_s=30, min_requests=10)

    for _ in range(12):
        assert (await http.get("/test/broken")).status_code == 500
    await http.get("/livez")

    message = await asyncio.to_thread(
        receiver.wait_for, "/slack", lambda m: "[FIRING] [HIGH]" in m["text"]
    )
    assert "requests failed with 5xx" in message["text"]
    assert rows(database_url, "high_error_rate") == [("firing", ["webhook"])]


async def test_a_handful_of_logins_does_not_raise_the_latency_alert(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        ALERT_EVALUATION_INTERVAL="3600",  # the test runs the evaluation itself
        ALERT_WEBHOOK_URLS=f"{receiver.base_url}/slack",
    )
    app = create_app(settings)
    async with serving(app) as http:
        evaluator = monitoring(app).evaluator
        evaluator.rules = tuple(rule for rule in RULES if rule.name == "high_latency_p95")
        # A 250 ms API budget: one argon2 login (about 0.5 s on two cores) is past it alone.
        evaluator.thresholds = Thresholds(p95_s=0.25)
        account = await register(http)
        for _ in range(5):
            await login(http, account["email"])
        for _ in range(60):
            assert (await http.get("/api/v2/experts")).status_code == 200

        await evaluator.tick()
        await evaluator.escalation.drain()

    assert receiver.at("/slack") == []
    assert rows(database_url, "high_latency_p95") == []
    # The evaluation saw the six password checks, on their own budget.
    assert evaluator.cluster_traffic.counts.slow_buckets[-1][1] == 6
