"""A reconciliation difference raises the critical alert escrow_reconciliation_difference,
which resolves once a reconciliation finds none; fee settings that differ from the deployed
contract are such a difference."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chainconsult.config import EscrowSettings
from chainconsult.escrow.watcher import reconcile
from chainconsult.infra.chain.rpc import ChainClient
from chainconsult.infra.health.checks import Check, HealthReport, PoolState
from chainconsult.infra.monitoring.alerts import (
    RULES,
    AlertEvaluator,
    AlertStatus,
    AlertStore,
    Escalation,
    Severity,
)
from chainconsult.infra.monitoring.logging import configure_logging
from chainconsult.infra.monitoring.metrics import escrow_reconciliation_differences
from chainconsult.infra.monitoring.traffic import TrafficWindow
from tests.escrow.conftest import FEE_BPS, Platform
from tests.escrow.scenario import mint, planned_deal, sign_and_send
from tests.market import query

RULE = next(rule for rule in RULES if rule.name == "escrow_reconciliation_difference")
CALM = HealthReport(
    checks=(Check("postgres:responseTime", "datastore", "pass", 1.0, "ms"),),
    at=dt.datetime.now(dt.UTC),
    database_ok=True,
    redis_configured=False,
    redis_ok=None,
    pool=PoolState(
        size=5, checked_out=1, overflow=0, capacity=10, exhausted_for_s=0, stays_exhausted=False
    ),
    jobs=None,
    process={},
    memory_ratio=0.1,
    disk_ratio=0.1,
)


class CalmHealth:
    cache_seconds = 0.0

    async def report(self, *, max_age_s: float | None = None) -> HealthReport:
        return CALM


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


def evaluator(engine: AsyncEngine) -> AlertEvaluator:
    """An API process's evaluator with only the escrow rule and no channels."""
    return AlertEvaluator(
        health=CalmHealth(),  # type: ignore[arg-type]
        store=AlertStore(engine),
        escalation=Escalation(webhook_urls=[], pagerduty_url="", pagerduty_routing_key=None),
        window=TrafficWindow(),
        exchange=None,
        lease=None,
        interval_s=10.0,
        rules=(RULE,),
    )


def alert_rows(database_url: str) -> list[tuple[object, ...]]:
    return query(
        database_url,
        "SELECT status, severity, details->>'differences' FROM alerts WHERE rule = %s "
        "ORDER BY first_seen_at",
        RULE.name,
    )


@pytest.fixture
def escrow_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The watcher's structured log lines, as the deployment's logging emits them."""
    configure_logging("WARNING")
    caplog.set_level(logging.WARNING, logger="chainconsult.escrow.watcher")
    return lambda: [record.msg for record in caplog.records if isinstance(record.msg, dict)]


def differing_settings(lines: list[dict[str, Any]]) -> list[str]:
    return [
        line["setting"] for line in lines if line["event"] == "escrow_reconciliation_difference"
    ]


async def reconciled(platform: Platform, settings: EscrowSettings) -> int:
    client = ChainClient(platform.chain.url)
    try:
        return await reconcile(platform.sessionmaker, settings, client)
    finally:
        await client.close()


async def test_a_difference_fires_the_critical_alert_until_a_clean_reconciliation(
    platform: Platform, database_url: str, engine: AsyncEngine
) -> None:
    assert RULE.severity is Severity.critical
    chain, http = platform.chain, platform.http
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await http.post(f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client)
    assert funding.status_code == 200, funding.text
    mint(platform, chain.client, int(funding.json()["amount_units"]))
    sign_and_send(platform, chain.client, funding.json()["transactions"])
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()
    settings = platform.settings.escrow
    process = evaluator(engine)

    assert await reconciled(platform, settings) == 0
    await process.tick()
    assert alert_rows(database_url) == []

    # A milestone changed behind the chain's back: the next evaluation fires the alert.
    first = deal.milestone_ids[0]
    query(database_url, "UPDATE milestones SET status = 'released' WHERE id = %s", first)
    assert await reconciled(platform, settings) == 1
    await process.tick()
    assert alert_rows(database_url) == [("firing", "critical", "1")]
    await process.tick()
    assert alert_rows(database_url) == [("firing", "critical", "1")]

    # Repaired: the next reconciliation finds nothing and the alert resolves.
    query(database_url, "UPDATE milestones SET status = 'funded' WHERE id = %s", first)
    assert await reconciled(platform, settings) == 0
    await process.tick()
    assert alert_rows(database_url) == [(AlertStatus.resolved.value, "critical", "1")]


async def test_fee_settings_differing_from_the_contract_are_a_difference(
    platform: Platform,
    engine: AsyncEngine,
    database_url: str,
    escrow_log: Callable[[], list[dict[str, Any]]],
) -> None:
    settings = platform.settings.escrow
    assert (settings.platform_fee_bps, settings.platform_fee_address) == (
        FEE_BPS,
        platform.chain.fee_recipient.address,
    )
    # Before the watcher's first step (no confirmed block) the fee is checked all the same.
    assert await reconciled(platform, settings) == 0

    process = evaluator(engine)
    other_fee = settings.model_copy(update={"platform_fee_bps": FEE_BPS + 50})
    assert await reconciled(platform, other_fee) == 1
    (logged,) = [line for line in escrow_log() if "setting" in line]
    assert logged["level"] == "critical"
    assert (logged["setting"], logged["configured"], logged["contract_value"]) == (
        "PLATFORM_FEE_BPS",
        str(FEE_BPS + 50),
        str(FEE_BPS),
    )
    await process.tick()
    assert alert_rows(database_url) == [("firing", "critical", "1")]

    seen = len(escrow_log())
    wrong_address = settings.model_copy(
        update={"platform_fee_address": platform.chain.stranger.address}
    )
    assert await reconciled(platform, wrong_address) == 1
    both = wrong_address.model_copy(update={"platform_fee_bps": 0})
    assert await reconciled(platform, both) == 2
    assert differing_settings(escrow_log()[seen:]) == [
        "PLATFORM_FEE_ADDRESS",
        "PLATFORM_FEE_BPS",
        "PLATFORM_FEE_ADDRESS",
    ]

    assert await reconciled(platform, settings) == 0
    await process.tick()
    assert alert_rows(database_url) == [("resolved", "critical", "1")]


async def test_a_reconciliation_run_by_another_process_fires_the_alert_here(
    platform: Platform, database_url: str, engine: AsyncEngine
) -> None:
    """A standalone worker's gauge never reaches the API process: the evaluator reads the
    count from the database, and keeps the last one read while the database is away."""
    settings = platform.settings.escrow
    other_fee = settings.model_copy(update={"platform_fee_bps": FEE_BPS + 50})
    assert await reconciled(platform, other_fee) == 1
    # This process's gauge as an API process on another host holds it: no reconciliation.
    escrow_reconciliation_differences.set(0)
    process = evaluator(engine)

    await process.tick()
    assert alert_rows(database_url) == [("firing", "critical", "1")]
    assert query(database_url, "SELECT differences FROM chain_reconciliations") == [(1,)]

    away = create_async_engine("postgresql+psycopg://postgres@127.0.0.1:9/nowhere")
    try:
        process.store.engine = away
        # Known down (no query tried), and found down by the query itself.
        assert await process._escrow_differences(database_ok=False) == 1
        assert await process._escrow_differences(database_ok=True) == 1
    finally:
        process.store.engine = engine
        await away.dispose()

    assert await reconciled(platform, settings) == 0
    await process.tick()
    assert alert_rows(database_url) == [("resolved", "critical", "1")]
