"""backup_stale (high) fires when backups stop and resolves with the next one; the gauge
chainconsult_backup_last_success_timestamp_seconds follows the newest verified backup. Real
backups of the test database, stamped by a test clock; alerts go to a real HTTP receiver."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chainconsult.config import Settings
from chainconsult.infra.backup.freshness import NewestBackupWatch
from chainconsult.infra.backup.service import take_backup
from chainconsult.infra.monitoring.alerts import (
    RULES,
    AlertEvaluator,
    AlertSpool,
    AlertStore,
    BackupAge,
    Escalation,
    Signals,
    Thresholds,
)
from chainconsult.infra.monitoring.lifespan import build_monitoring
from chainconsult.infra.monitoring.traffic import TrafficWindow
from tests.infra.backup.conftest import backup_settings
from tests.infra.monitoring.receiver import Receiver, http_receiver
from tests.infra.monitoring.test_alert_lifecycle import Clock, ScriptedHealth, slack_states
from tests.infra.monitoring.test_rules import CALM, traffic

STALE = next(rule for rule in RULES if rule.name == "backup_stale")
HOUR = 3600.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


def evaluator(
    settings: Settings, engine: AsyncEngine, receiver: Receiver, clock: Clock
) -> AlertEvaluator:
    spool = AlertSpool(settings.app.data_dir / "alerts")
    return AlertEvaluator(
        health=ScriptedHealth(),  # type: ignore[arg-type]
        store=AlertStore(engine, spool),
        escalation=Escalation(
            webhook_urls=[f"{receiver.base_url}/slack"],
            pagerduty_url=f"{receiver.base_url}/pagerduty",
            pagerduty_routing_key=None,
            spool=spool,
            clock=clock,
        ),
        window=TrafficWindow(),
        exchange=None,
        lease=None,
        interval_s=10.0,
        rules=(STALE,),
        clock=clock,
        backups=NewestBackupWatch(settings, refresh_s=0),
    )


def backup_at(settings: Settings, clock: Clock) -> float:
    manifest = take_backup(settings, clock=lambda: dt.datetime.fromtimestamp(clock.now, dt.UTC))
    return manifest.created_at.timestamp()


async def tick(process: AlertEvaluator) -> None:
    await process.tick()
    await process.escalation.drain()


def gauge() -> float | None:
    return REGISTRY.get_sample_value("chainconsult_backup_last_success_timestamp_seconds")


async def test_backup_stale_fires_when_backups_stop_and_resolves_after_the_next_one(
    database_url: str, tmp_path: Path, engine: AsyncEngine, receiver: Receiver
) -> None:
    settings = backup_settings(database_url, tmp_path)
    clock = Clock()
    process = evaluator(settings, engine, receiver, clock)
    taken = backup_at(settings, clock)

    clock.advance(25 * HOUR)
    await tick(process)
    assert slack_states(receiver) == []
    assert gauge() == taken

    clock.advance(2 * HOUR)  # the next daily backup did not come
    await tick(process)
    assert slack_states(receiver) == ["FIRING"]
    [firing] = receiver.at("/slack")
    assert "newest verified backup is 27.0 h old (limit 26 h)" in firing["text"]

    retaken = backup_at(settings, clock)
    clock.advance(10)
    await tick(process)

    assert slack_states(receiver) == ["FIRING", "RESOLVED"]
    assert gauge() == retaken


async def test_with_no_backup_at_all_a_new_deployment_has_until_the_limit(
    database_url: str, tmp_path: Path, engine: AsyncEngine, receiver: Receiver
) -> None:
    settings = backup_settings(database_url, tmp_path)
    clock = Clock()
    process = evaluator(settings, engine, receiver, clock)

    await tick(process)
    clock.advance(25 * HOUR)
    await tick(process)
    assert slack_states(receiver) == []
    assert gauge() == 0

    clock.advance(2 * HOUR)
    await tick(process)
    [firing] = receiver.at("/slack")
    assert "no verified backup found in 27 h" in firing["text"]


async def test_the_limit_is_backup_max_age_hours(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    settings = backup_settings(database_url, tmp_path, BACKUP_MAX_AGE_HOURS="4")
    monitoring = build_monitoring(settings, engine=engine, redis=None)
    thresholds = monitoring.evaluator.thresholds
    await monitoring.escalation.aclose()
    await monitoring.health.aclose()
    await monitoring.probe_engine.dispose()
    signals = Signals(CALM, traffic(100), backups=BackupAge(newest_at=0.0, age_s=5 * HOUR))

    assert STALE.evaluate(signals, thresholds) is not None
    assert STALE.evaluate(signals, Thresholds()) is None  # the default: 26 h
    assert STALE.evaluate(Signals(CALM, traffic(100)), thresholds) is None  # not watched


class SlowStore(NewestBackupWatch):
    """A store that answers only when the test says so (an S3 endpoint hanging), or fails."""

    def __init__(self, settings: Settings, *, fails: bool = False) -> None:
        super().__init__(settings, refresh_s=0, wait_s=0.2)
        self.answer = threading.Event()
        self.fails = fails

    def _read(self) -> float | None:
        if self.fails:
            raise RuntimeError("the store refused the credentials")
        self.answer.wait(30)
        return 1_800_000_000.0


async def test_a_hanging_or_failing_backup_store_never_holds_up_the_evaluator(
    database_url: str, tmp_path: Path, engine: AsyncEngine, receiver: Receiver
) -> None:
    settings = backup_settings(database_url, tmp_path)
    clock = Clock()
    process = evaluator(settings, engine, receiver, clock)
    process.backups = hanging = SlowStore(settings)

    started = time.monotonic()
    await tick(process)
    waited = time.monotonic() - started
    hanging.answer.set()
    clock.advance(10)
    await tick(process)  # the answer the hanging read finally gave is used

    assert waited < 10  # the store hangs for 30 s; the evaluator waited 0.2 s of it
    assert gauge() == 1_800_000_000.0
    hanging.fails = True
    clock.advance(10)
    await tick(process)
    assert gauge() == 1_800_000_000.0  # the last answer stands
