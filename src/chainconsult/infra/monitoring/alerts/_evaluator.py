"""The periodic evaluator, run as an asyncio task in every API process (never as a job: a
database-down alert cannot wait for a job stored in the database that is down).

Each tick: sample this host's counters, share them (Redis), probe health, and then, on the one
process holding the lease, evaluate the rules, store transitions and escalate."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from chainconsult.infra.health.checks import HealthMonitor, HealthReport
from chainconsult.infra.monitoring.alerts._escalation import Escalation
from chainconsult.infra.monitoring.alerts._lease import EvaluatorLease
from chainconsult.infra.monitoring.alerts._model import (
    AlertRecord,
    AlertStatus,
    Severity,
    utcnow,
)
from chainconsult.infra.monitoring.alerts._rules import RULES, AlertRule, Signals, Thresholds
from chainconsult.infra.monitoring.alerts._store import AlertStore
from chainconsult.infra.monitoring.exposition import (
    jobs_failed_last_hour,
    jobs_oldest_age_seconds,
    jobs_worker_heartbeat_age_seconds,
)
from chainconsult.infra.monitoring.metrics import (
    alerts_active,
    db_pool_connections,
    jobs_queue_depth,
)
from chainconsult.infra.monitoring.multiproc import multiprocess_dir, reap_dead_workers
from chainconsult.infra.monitoring.traffic import (
    TrafficExchange,
    TrafficStats,
    TrafficWindow,
    node_key,
)

log = structlog.get_logger("chainconsult.alerts")


class AlertEvaluator:
    def __init__(
        self,
        *,
        health: HealthMonitor,
        store: AlertStore,
        escalation: Escalation,
        window: TrafficWindow,
        exchange: TrafficExchange | None,
        lease: EvaluatorLease | None,
        interval_s: float,
        thresholds: Thresholds | None = None,
        rules: tuple[AlertRule, ...] = RULES,
    ) -> None:
        self.health = health
        self.store = store
        self.escalation = escalation
        self.window = window
        self.exchange = exchange
        self.lease = lease
        self.interval_s = interval_s
        self.thresholds = thresholds or Thresholds()
        self.rules = rules
        self.node = node_key()
        self.cluster_traffic = TrafficStats(seconds=self.thresholds.window_s)
        """The latest window numbers, cluster-wide when Redis shares them (for the dashboard)."""
        self._bad: dict[str, int] = {}
        self._good: dict[str, int] = {}
        self._queues: set[str] = set()
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:
                log.exception("alert_evaluation_failed")
            pause = max(0.0, self.interval_s - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), pause)

    async def tick(self) -> None:
        self.window.record()
        self.cluster_traffic = await self._traffic()
        # At most one interval old: the rules see what the probes see now.
        report = await self.health.report(max_age_s=min(self.health.cache_seconds, self.interval_s))
        self._update_gauges(report)
        path = multiprocess_dir()
        if path is not None:
            reap_dead_workers(path)
        leader = await self.lease.hold() if self.lease is not None else True
        if report.database_ok:
            try:
                await self.store.flush()
                await self.store.refresh()
            except Exception as exc:
                # The probe passed a moment ago; this write did not. Keep it for next time.
                log.warning("alert_store_unavailable", error=type(exc).__name__)
        if leader:
            await self._evaluate(Signals(health=report, traffic=self.cluster_traffic), report)
        for severity in Severity:
            alerts_active.labels(severity.value).set(
                sum(1 for a in self.store.active.values() if a.severity is severity)
            )

    async def _traffic(self) -> TrafficStats:
        local = self.window.stats(self.thresholds.window_s)
        if self.exchange is None:
            return local
        try:
            async with asyncio.timeout(0.5):
                await self.exchange.publish(local, self.node)
                return await self.exchange.cluster(local, self.node)
        except Exception:
            return local

    def _update_gauges(self, report: HealthReport) -> None:
        pool = report.pool
        db_pool_connections.labels("checked_out").set(pool.checked_out)
        db_pool_connections.labels("idle").set(max(0, pool.size - pool.checked_out))
        db_pool_connections.labels("overflow").set(pool.overflow)
        jobs = report.jobs
        if jobs is not None and jobs.installed:
            # A drained queue drops out of the GROUP BY; it must read 0, not its last depth.
            self._queues.update(jobs.depth_by_queue)
            for queue in self._queues:
                jobs_queue_depth.labels(queue).set(jobs.depth_by_queue.get(queue, 0))
            jobs_oldest_age_seconds.set(jobs.oldest_age_s or 0.0)
            jobs_failed_last_hour.set(jobs.failed_last_hour)
            if jobs.worker_heartbeat_age_s is not None:
                jobs_worker_heartbeat_age_seconds.set(jobs.worker_heartbeat_age_s)

    async def _evaluate(self, signals: Signals, report: HealthReport) -> None:
        db_ok = report.database_ok
        for rule in self.rules:
            fingerprint = rule.fingerprint
            finding = rule.evaluate(signals, self.thresholds)
            active = self.store.active.get(fingerprint)
            if finding is not None:
                self._good[fingerprint] = 0
                self._bad[fingerprint] = self._bad.get(fingerprint, 0) + 1
                if active is not None:
                    active.last_seen_at = utcnow()
                    active.summary, active.details = finding.summary, finding.details
                    if self.store.needs_touch(active):
                        await self._write(active, db_ok)
                elif self._bad[fingerprint] >= rule.fire_after:
                    record = AlertRecord(
                        fingerprint=fingerprint,
                        rule=rule.name,
                        severity=rule.severity,
                        summary=finding.summary,
                        details=finding.details,
                    )
                    record.notified_channels = self.escalation.channels_for(rule.severity)
                    if await self._write(record, db_ok):
                        log.warning(
                            "alert_firing",
                            rule=rule.name,
                            severity=rule.severity.value,
                            summary=finding.summary,
                        )
                        self.escalation.dispatch(record, "trigger")
            else:
                self._bad[fingerprint] = 0
                self._good[fingerprint] = self._good.get(fingerprint, 0) + 1
                if active is not None and self._good[fingerprint] >= rule.resolve_after:
                    active.status = AlertStatus.resolved
                    active.resolved_at = active.last_seen_at = utcnow()
                    if await self._write(active, db_ok):
                        log.warning("alert_resolved", rule=rule.name, severity=rule.severity.value)
                        self.escalation.dispatch(active, "resolve")

    async def _write(self, record: AlertRecord, db_ok: bool) -> bool:
        """Store a transition; True when this process owns it and must notify."""
        if db_ok:
            try:
                return await self.store.save(record)
            except Exception as exc:
                log.warning("alert_store_unavailable", error=type(exc).__name__)
        # The database is down: remember, and notify anyway (this process holds the lease,
        # or nothing can coordinate; PagerDuty's dedup key merges duplicates).
        self.store.remember(record)
        return True

    async def stop(self, task: asyncio.Task[None], *, grace_s: float = 3.0) -> None:
        """Let the current evaluation finish (cancelling it mid-query would make the
        database driver wait for the server to acknowledge the cancel), then write what is
        still unsaved and give the lease up."""
        self.stopping.set()
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.lease is not None:
            await self.lease.release()
        with contextlib.suppress(Exception):
            await self.store.flush()
