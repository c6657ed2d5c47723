"""Everything monitoring runs inside an API process, started and stopped by the app lifespan:
the health monitor, the traffic window, the alert evaluator task and (with LOG_TO_DATABASE)
the log writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chainconsult.infra.backup.freshness import NewestBackupWatch
from chainconsult.infra.embedded.state import EmbeddedDatabaseWatch
from chainconsult.infra.health.checks import (
    PROBE_TIMEOUT_S,
    HealthMonitor,
    InvalidationChannel,
    PoolWatch,
)
from chainconsult.infra.health.probes import DependencyPings
from chainconsult.infra.monitoring.alerts import (
    AlertEvaluator,
    AlertSpool,
    AlertStore,
    Escalation,
    EvaluatorLease,
    Thresholds,
)
from chainconsult.infra.monitoring.dblog import DatabaseLogHandler, DatabaseLogWriter
from chainconsult.infra.monitoring.job_queue_readers import ProcrastinateTables
from chainconsult.infra.monitoring.multiproc import mark_this_process_dead
from chainconsult.infra.monitoring.providers import MonitoringProviders
from chainconsult.infra.monitoring.slow_queries import SlowQueryLog
from chainconsult.infra.monitoring.traffic import TrafficExchange, TrafficWindow
from chainconsult.infra.settings.platform import PlatformSettings


def build_probe_engine(settings: PlatformSettings) -> AsyncEngine:
    """A one-connection pool for the job-queue statistics of health probes, apart from the
    request pool (the ping itself runs on its own thread, see health/probes.py)."""
    return create_async_engine(
        settings.database.sqlalchemy_url(),
        pool_size=1,
        max_overflow=0,
        pool_timeout=PROBE_TIMEOUT_S,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 1, "application_name": "chainconsult-health"},
    )


def default_providers(
    settings: PlatformSettings, engine: AsyncEngine, probe_engine: AsyncEngine
) -> MonitoringProviders:
    """Readers over the job tables and the slow-query log. Queue statistics are part of every
    health probe, so they go through the probe's own connection: a saturated request pool must
    not turn them into timeouts."""
    slow = SlowQueryLog(engine, threshold_ms=settings.database.slow_query_ms)
    return MonitoringProviders(
        job_stats=ProcrastinateTables(probe_engine).stats,
        failed_jobs=ProcrastinateTables(engine).recent_failures,
        slow_queries=slow.recent,
    )


@dataclass
class Monitoring:
    health: HealthMonitor
    evaluator: AlertEvaluator
    escalation: Escalation
    providers: MonitoringProviders
    probe_engine: AsyncEngine
    log_handler: DatabaseLogHandler | None = None
    log_writer: DatabaseLogWriter | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _delivery: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.evaluator.window.record()
        self._tasks.append(asyncio.create_task(self._evaluate_later(), name="alert-evaluator"))
        self._delivery = asyncio.create_task(self.escalation.run(), name="alert-delivery")
        if self.log_writer is not None and self.log_handler is not None:
            logging.getLogger().addHandler(self.log_handler)
            self._tasks.append(asyncio.create_task(self.log_writer.run(), name="log-writer"))

    async def _evaluate_later(self) -> None:
        # The first evaluation waits one interval: every sample window needs two samples.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.evaluator.stopping.wait(), self.evaluator.interval_s)
        await self.evaluator.run()

    async def stop(self) -> None:
        if self._tasks:
            await self.evaluator.stop(self._tasks[0])
        if self.log_writer is not None and len(self._tasks) > 1:
            await self.log_writer.stop(self._tasks[1])
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
        await self.escalation.stop(self._delivery)
        await self.escalation.aclose()
        await self.health.aclose()
        await self.probe_engine.dispose()
        mark_this_process_dead()


def build_monitoring(
    settings: PlatformSettings,
    *,
    engine: AsyncEngine,
    redis: Any,
    providers: MonitoringProviders | None = None,
    http: httpx.AsyncClient | None = None,
    cache: InvalidationChannel | None = None,
) -> Monitoring:
    monitoring_settings = settings.monitoring
    interval = monitoring_settings.alert_evaluation_interval_s
    probe_engine = build_probe_engine(settings)
    providers = providers or default_providers(settings, engine, probe_engine)
    window = TrafficWindow()
    spool = AlertSpool(settings.app.data_dir / "alerts")
    exchange = lease = None
    if redis is not None:
        prefix = settings.redis.key_prefix
        exchange = TrafficExchange(redis, prefix, stale_after_s=max(3 * interval, 5.0))
        lease = EvaluatorLease(redis, f"{prefix}:monitoring:evaluator", ttl_s=3 * interval)
    escalation = Escalation(
        webhook_urls=[str(url) for url in monitoring_settings.alert_webhook_urls],
        pagerduty_url=str(monitoring_settings.pagerduty_events_url),
        pagerduty_routing_key=(
            monitoring_settings.pagerduty_routing_key.get_secret_value()
            if monitoring_settings.pagerduty_routing_key is not None
            else None
        ),
        spool=spool,
        http=http,
    )
    evaluator: AlertEvaluator
    state_file = settings.database.embedded_state_file
    health = HealthMonitor(
        pings=DependencyPings(
            postgres_url=settings.database.libpq_url(),
            redis_url=(
                settings.redis.url.get_secret_value() if settings.redis.url is not None else None
            ),
        ),
        pool_watch=PoolWatch(engine),
        data_dir=settings.app.data_dir,
        providers=providers,
        cache_hit_rate=lambda: evaluator.cluster_traffic.cache_hit_rate,
        cache_seconds=monitoring_settings.health_cache_s,
        cache=cache,
        embedded=None
        if state_file is None
        else EmbeddedDatabaseWatch(
            state_file, max_down_s=settings.database.embedded_max_down_seconds
        ),
    )
    evaluator = AlertEvaluator(
        health=health,
        store=AlertStore(engine, spool),
        escalation=escalation,
        window=window,
        exchange=exchange,
        lease=lease,
        interval_s=interval,
        thresholds=Thresholds(backup_max_age_s=settings.backup.max_age_hours * 3600),
        backups=NewestBackupWatch(settings),
    )
    handler = writer = None
    if settings.app.log_to_database:
        handler = DatabaseLogHandler()
        writer = DatabaseLogWriter(engine, handler)
    return Monitoring(
        health=health,
        evaluator=evaluator,
        escalation=escalation,
        providers=providers,
        probe_engine=probe_engine,
        log_handler=handler,
        log_writer=writer,
    )
