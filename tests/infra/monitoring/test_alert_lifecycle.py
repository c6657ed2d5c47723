"""An alert fires and resolves exactly once, and both reach every channel, across process
restarts and across the processes of one host, including while PostgreSQL is down; latency
alerts need enough requests and have hysteresis. Evaluators run on a test clock against the
real database and a real HTTP receiver; only the PostgreSQL probe's answer is scripted (an
outage of the shared test server cannot be produced on demand; test_database_down.py stops a
private one)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chainconsult.infra.health.checks import HealthReport
from chainconsult.infra.monitoring.alerts import (
    RULES,
    AlertEvaluator,
    AlertSpool,
    AlertStore,
    Escalation,
    Signals,
)
from chainconsult.infra.monitoring.traffic import TrafficWindow
from tests.infra.monitoring.receiver import Receiver, http_receiver
from tests.infra.monitoring.test_rules import CALM, with_p95

ROUTING_KEY = "R0UTINGKEY0000000000000000000000"
RULE = {rule.name: rule for rule in RULES}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedHealth:
    """The health monitor's interface, answering what the test says about PostgreSQL."""

    cache_seconds = 0.0

    def __init__(self) -> None:
        self.database_ok = True

    async def report(self, *, max_age_s: float | None = None) -> HealthReport:
        return dataclasses.replace(CALM, database_ok=self.database_ok)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@dataclasses.dataclass
class Host:
    """What survives a process on one host: its data dir (and the database)."""

    data_dir: Path
    engine: AsyncEngine
    receiver: Receiver
    clock: Clock
    health: ScriptedHealth

    def process(self, rule: str = "database_down") -> AlertEvaluator:
        """A fresh API process: nothing in memory, the spool on disk."""
        spool = AlertSpool(self.data_dir / "alerts")
        escalation = Escalation(
            webhook_urls=[f"{self.receiver.base_url}/slack"],
            pagerduty_url=f"{self.receiver.base_url}/pagerduty",
            pagerduty_routing_key=ROUTING_KEY,
            spool=spool,
            clock=self.clock,
        )
        return AlertEvaluator(
            health=self.health,  # type: ignore[arg-type]
            store=AlertStore(self.engine, spool),
            escalation=escalation,
            window=TrafficWindow(),
            exchange=None,
            lease=None,
            interval_s=10.0,
            rules=(RULE[rule],),
            clock=self.clock,
        )


@pytest.fixture
def host(tmp_path: Path, engine: AsyncEngine, receiver: Receiver) -> Host:
    return Host(tmp_path / "var", engine, receiver, Clock(), ScriptedHealth())


async def ticks(host: Host, *processes: AlertEvaluator, times: int = 3) -> None:
    for _ in range(times):
        host.clock.advance(10)
        # At once, like processes: each reads the state before the others' changes land.
        await asyncio.gather(*(process.tick() for process in processes))
    for process in processes:
        await process.escalation.drain()


def pagerduty_actions(receiver: Receiver) -> list[str]:
    return [event["event_action"] for event in receiver.at("/pagerduty")]


def slack_states(receiver: Receiver) -> list[str]:
    return [message["text"].split("]")[0].split("[")[1] for message in receiver.at("/slack")]


def alert_rows(database_url: str, rule: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        return conn.execute(
            "SELECT status, notified_channels, first_seen_at, resolved_at FROM alerts "
            "WHERE rule = %s",
            (rule,),
        ).fetchall()


async def test_database_down_fired_before_a_crash_resolves_once_after_the_restart(
    host: Host, database_url: str
) -> None:
    host.health.database_ok = False
    crashed = host.process()
    await ticks(host, crashed, times=2)
    assert pagerduty_actions(host.receiver) == ["trigger"]
    # The process dies here: nothing of it is used again (no shutdown, no flush).

    restarted = host.process()
    await ticks(host, restarted)  # still down: the alert is known, nobody pages again
    assert pagerduty_actions(host.receiver) == ["trigger"]
    host.health.database_ok = True
    await ticks(host, restarted)

    assert pagerduty_actions(host.receiver) == ["trigger", "resolve"]
    trigger, resolve = host.receiver.at("/pagerduty")
    assert resolve["dedup_key"] == trigger["dedup_key"]
    assert slack_states(host.receiver) == ["FIRING", "RESOLVED"]
    [(status, channels, first_seen, resolved_at)] = alert_rows(database_url, "database_down")
    assert status == "resolved"
    assert sorted(channels) == ["pagerduty", "webhook"]
    assert resolved_at > first_seen

    await ticks(host, host.process())  # and once more: nothing is resolved twice
    assert pagerduty_actions(host.receiver) == ["trigger", "resolve"]
    assert len(alert_rows(database_url, "database_down")) == 1


async def test_two_processes_of_one_host_page_and_resolve_a_database_outage_once(
    host: Host, database_url: str
) -> None:
    first, second = host.process(), host.process()
    host.health.database_ok = False
    await ticks(host, first, second)
    assert pagerduty_actions(host.receiver) == ["trigger"]
    assert slack_states(host.receiver) == ["FIRING"]

    host.health.database_ok = True
    await ticks(host, first, second)

    assert pagerduty_actions(host.receiver) == ["trigger", "resolve"]
    assert slack_states(host.receiver) == ["FIRING", "RESOLVED"]
    assert [row[0] for row in alert_rows(database_url, "database_down")] == ["resolved"]


async def test_a_resolve_the_receiver_refused_before_a_restart_is_sent_after_it(
    host: Host,
) -> None:
    crashed = host.process()
    host.health.database_ok = False
    await ticks(host, crashed, times=2)
    host.health.database_ok = True
    host.receiver.failures_left = 100  # the receivers are having a bad moment
    for _ in range(2):
        host.clock.advance(10)
        await crashed.tick()
    await crashed.escalation.deliver_due()
    assert pagerduty_actions(host.receiver) == ["trigger"]

    host.receiver.failures_left = 0
    host.clock.advance(60)
    await host.process().escalation.drain()

    assert pagerduty_actions(host.receiver) == ["trigger", "resolve"]
    assert slack_states(host.receiver) == ["FIRING", "RESOLVED"]


async def test_a_resolve_never_overtakes_its_refused_trigger(host: Host) -> None:
    process = host.process()
    host.health.database_ok = False
    host.receiver.failures_left = 2  # both first notifications (PagerDuty and Slack)
    await ticks(host, process, times=2)
    host.health.database_ok = True
    for _ in range(2):  # the resolve is owed while the trigger waits for its retry
        host.clock.advance(0.1)
        await process.tick()
    await process.escalation.deliver_due()
    assert pagerduty_actions(host.receiver) == []

    host.clock.advance(60)
    await process.escalation.drain()

    assert pagerduty_actions(host.receiver) == ["trigger", "resolve"]
    assert slack_states(host.receiver) == ["FIRING", "RESOLVED"]


async def test_latency_alert_holds_through_a_dip_and_resolves_once_after_two_calm_minutes(
    host: Host, database_url: str
) -> None:
    process = host.process("high_latency_p95")

    async def minute(p95_ms: float, seconds: float = 60, step: float = 10) -> None:
        for _ in range(round(seconds / step)):
            host.clock.advance(step)
            await process.evaluate(Signals(health=CALM, traffic=with_p95(p95_ms)))
            await process.escalation.drain()

    await minute(600)  # fires
    await minute(450, seconds=180)  # below 500 ms but above the 400 ms clear level: stays
    assert slack_states(host.receiver) == ["FIRING"]
    await minute(350, seconds=110)  # calm, but not yet for two minutes
    assert slack_states(host.receiver) == ["FIRING"]
    await minute(350, seconds=20)
    assert slack_states(host.receiver) == ["FIRING", "RESOLVED"]
    await minute(450)  # back under the threshold's hysteresis band: no new alert
    assert slack_states(host.receiver) == ["FIRING", "RESOLVED"]
    [(status, _, first_seen, resolved_at)] = alert_rows(database_url, "high_latency_p95")
    assert status == "resolved"
    assert (resolved_at - first_seen).total_seconds() >= 60 + 180 + 120
