"""The periodic evaluator, run as an asyncio task in every API process (never as a job: a
database-down alert cannot wait for a job stored in the database that is down).

Each tick: sample this host's counters, share them (Redis), probe health, and then, on the one
process holding the lease, evaluate the rules, store transitions and escalate."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from chainconsult.infra.chain.models import ChainReconciliation
from chainconsult.infra.health.checks import HealthMonitor, HealthReport
from chainconsult.infra.monitoring.alerts._escalation import Escalation
from chainconsult.infra.monitoring.alerts._lease import EvaluatorLease
from chainconsult.infra.monitoring.alerts._model import (
    AlertRecord,
    AlertStatus,
    Severity,
    at,
)
from chainconsult.infra.monitoring.alerts._rules import (
    RULES,
    AlertRule,
    BackupAge,
    Signals,
    Thresholds,
)
from chainconsult.infra.monitoring.alerts._spool import snapshot
from chainconsult.infra.monitoring.alerts._store import AlertStore
from chainconsult.infra.monitoring.exposition import (
    jobs_failed_last_hour,
    jobs_oldest_age_seconds,
    jobs_worker_heartbeat_age_seconds,
)
from chainconsult.infra.monitoring.metrics import (
    alerts_active,
    backup_last_success_timestamp_seconds,
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


_LATEST_RECONCILIATION = (
    select(ChainReconciliation.differences).order_by(ChainReconciliation.checked_at.desc()).limit(1)
)
"""What the newest escrow reconciliation found, whichever process ran it (a standalone
worker's metrics never reach the API's); an old contract's row stays behind the new one."""


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
        clock: Callable[[], float] = time.time,
        backups: Callable[[], Awaitable[float | None]] | None = None,
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
        self.clock = clock
        """Wall-clock seconds; tests pass their own."""
        self.backups = backups
        """The newest verified backup's time (infra.backup.freshness); None: not watched."""
        self._watching_since: float | None = None
        self._escrow_differences_seen: float | None = None
        self.node = node_key()
        self.cluster_traffic = TrafficStats(seconds=self.thresholds.window_s)
        """The latest window numbers, cluster-wide when Redis shares them (for the dashboard)."""
        self._bad: dict[str, int] = {}
        self._good: dict[str, int] = {}
        self._clear_since: dict[str, float] = {}
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
        backups = await self._backup_age()
        await self.store.sync(database_ok=report.database_ok)
        if leader:
            await self.evaluate(
                Signals(
                    health=report,
                    traffic=self.cluster_traffic,
                    backups=backups,
                    escrow_differences=await self._escrow_differences(report.database_ok),
                )
            )
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

    async def _escrow_differences(self, database_ok: bool) -> float | None:
        """None before any reconciliation; while the database is away, the last one read."""
        if not database_ok:
            return self._escrow_differences_seen
        try:
            async with self.store.engine.connect() as conn:
                found = await conn.scalar(_LATEST_RECONCILIATION)
        except (SQLAlchemyError, OSError):
            return self._escrow_differences_seen
        self._escrow_differences_seen = None if found is None else float(found)
        return self._escrow_differences_seen

    async def _backup_age(self) -> BackupAge | None:
        if self.backups is None:
            return None
        newest = await self.backups()
        backup_last_success_timestamp_seconds.set(newest or 0)
        now = self.clock()
        if self._watching_since is None:
            self._watching_since = now
        return BackupAge(newest, now - (newest if newest is not None else self._watching_since))

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

    async def evaluate(self, signals: Signals) -> None:
        """Run every rule once and store and notify what changed (the lease holder's part of
        a tick; ``store.sync`` first)."""
        db_ok = signals.health.database_ok
        now = self.clock()
        for rule in self.rules:
            fingerprint = rule.fingerprint
            active = self.store.active.get(fingerprint)
            # Hysteresis: a firing alert is judged by its rule's (laxer) condition to stay.
            judge = rule.still_firing if active is not None and rule.still_firing else rule.evaluate
            finding = judge(signals, self.thresholds)
            if finding is not None:
                self._good[fingerprint] = 0
                self._clear_since.pop(fingerprint, None)
                self._bad[fingerprint] = self._bad.get(fingerprint, 0) + 1
                if active is not None:
                    active.last_seen_at = at(now)
                    active.summary, active.details = finding.summary, finding.details
                    await self.store.touch(active, database_ok=db_ok)
                elif self._bad[fingerprint] >= rule.fire_after:
                    await self._fire(rule, finding.summary, finding.details, now, db_ok)
            else:
                self._bad[fingerprint] = 0
                self._good[fingerprint] = self._good.get(fingerprint, 0) + 1
                clear_since = self._clear_since.setdefault(fingerprint, now)
                if (
                    active is not None
                    and self._good[fingerprint] >= rule.resolve_after
                    and now - clear_since >= rule.resolve_after_s
                ):
                    await self._resolve(rule, active, now, db_ok)

    async def _fire(
        self, rule: AlertRule, summary: str, details: dict[str, Any], now: float, db_ok: bool
    ) -> None:
        record = AlertRecord(
            fingerprint=rule.fingerprint,
            rule=rule.name,
            severity=rule.severity,
            summary=summary,
            details=details,
            first_seen_at=at(now),
            last_seen_at=at(now),
        )
        record.notified_channels = self.escalation.channels_for(rule.severity)
        deliveries = self.escalation.deliveries_for(record, "trigger")
        if await self.store.transition(record, database_ok=db_ok, deliveries=deliveries):
            log.warning(
                "alert_firing", rule=rule.name, severity=rule.severity.value, summary=summary
            )
            self.escalation.owe()

    async def _resolve(self, rule: AlertRule, active: AlertRecord, now: float, db_ok: bool) -> None:
        resolved = snapshot(active)
        resolved.status = AlertStatus.resolved
        resolved.resolved_at = resolved.last_seen_at = at(now)
        deliveries = self.escalation.deliveries_for(resolved, "resolve")
        if await self.store.transition(resolved, database_ok=db_ok, deliveries=deliveries):
            log.warning("alert_resolved", rule=rule.name, severity=rule.severity.value)
            self.escalation.owe()

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
            # Whatever is not written now stays in the spool for the next process.
            await self.store.flush()
