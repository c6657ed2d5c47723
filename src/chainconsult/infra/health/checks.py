"""The dependency probes behind every health endpoint.

Probes run with short timeouts, all at once, and their result is reused for a second or two
(HEALTH_CACHE_SECONDS): a thousand health requests a second cost one probe per process per
period, and a hung dependency makes the answer ``fail`` quickly instead of hanging the check.
The database probe uses its own one-connection pool, so a saturated request pool shows up as
"pool exhausted", not as "database down"."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import psutil
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.db.pool import pool_status
from chainconsult.infra.embedded.state import EmbeddedDatabaseWatch
from chainconsult.infra.health.probes import DependencyPings
from chainconsult.infra.monitoring.exposition import data_dir_disk, dependency_up, sample_process
from chainconsult.infra.monitoring.providers import JobQueueStats, MonitoringProviders

log = structlog.get_logger("chainconsult.health")
Status = Literal["pass", "warn", "fail"]
PROBE_TIMEOUT_S = 1.0
STALE_GRACE_S = 3.0
"""How long past the cache period a report may still be served while a new one is made.
Longer than a whole probe can take (each dependency has PROBE_TIMEOUT_S), so under load no
request waits for a probe; a report is then at most cache period + one probe old."""
"""A pool with no free connection for this long makes the node not ready."""
MEMORY_WARN_RATIO = 0.90
DISK_WARN_RATIO = 0.90
QUEUE_OLDEST_WARN_S = 600.0
HEARTBEAT_WARN_S = 120.0
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda status: _RANK[status], default="pass")


@dataclass(frozen=True, slots=True)
class Check:
    """One entry of draft-inadarei-api-health-check's ``checks`` object."""

    key: str
    """``component:measurement``, e.g. ``postgres:responseTime``."""
    component_type: str
    status: Status
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    output: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    """Extra numbers for the detailed (admin) report only."""


@dataclass(frozen=True, slots=True)
class PoolState:
    size: int
    checked_out: int
    overflow: int
    capacity: int
    exhausted_for_s: float
    stays_exhausted: bool
    """No free connection for longer than a caller may wait (infra.db.pool's verdict)."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: tuple[Check, ...]
    at: dt.datetime
    database_ok: bool
    redis_configured: bool
    redis_ok: bool | None
    pool: PoolState
    jobs: JobQueueStats | None
    process: dict[str, float]
    memory_ratio: float
    disk_ratio: float | None

    @property
    def status(self) -> Status:
        return worst([check.status for check in self.checks])

    @property
    def ready(self) -> bool:
        return self.database_ok and not self.pool.stays_exhausted

    def check(self, key: str) -> Check | None:
        return next((check for check in self.checks if check.key == key), None)

    @property
    def notes(self) -> list[str]:
        notes = []
        if not self.database_ok:
            notes.append("database unreachable")
        if self.pool.stays_exhausted:
            notes.append("database pool exhausted")
        if not self.redis_configured:
            notes.append("redis not configured")
        elif not self.redis_ok:
            notes.append("redis unreachable")
        if self.redis_ok is not True:
            notes.append("using in-process memory for cache and rate limits")
        return notes


class PoolWatch:
    """The request pool as infra.db.pool accounts for it: saturation is measured from the
    first caller that had to wait, so a busy pool that still serves everyone is not sick."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def observe(self) -> PoolState:
        status = pool_status(self.engine)
        return PoolState(
            size=status.size,
            checked_out=status.checked_out,
            overflow=status.overflow,
            capacity=status.capacity,
            exhausted_for_s=status.exhausted_seconds,
            stays_exhausted=status.exhausted,
        )


def _log_failure(task: asyncio.Task[HealthReport]) -> None:
    # Retrieve the exception so a failed background probe is logged, not "never retrieved";
    # the next request probes again.
    if not task.cancelled() and task.exception() is not None:
        log.error("health_probe_failed", error=repr(task.exception()))


class InvalidationChannel(Protocol):
    """What health reads of the cache: the channel that keeps its memory tier coherent."""

    @property
    def channel(self) -> str | None: ...

    @property
    def coherent(self) -> bool: ...


class HealthMonitor:
    def __init__(
        self,
        *,
        pings: DependencyPings,
        pool_watch: PoolWatch,
        data_dir: Path,
        providers: MonitoringProviders,
        cache_hit_rate: Callable[[], float | None],
        cache_seconds: float,
        embedded: EmbeddedDatabaseWatch | None = None,
        cache: InvalidationChannel | None = None,
    ) -> None:
        self.pings = pings
        self.pool_watch = pool_watch
        self.data_dir = data_dir
        self.providers = providers
        self.cache_hit_rate = cache_hit_rate
        self.cache_seconds = cache_seconds
        self.embedded = embedded
        """Set in `serve`'s workers in embedded mode: its supervisor's view of the server."""
        self.cache = cache
        """This process's cache: a lost invalidation channel is a warning (entries then live
        a second in memory, correct but reloaded)."""
        self._cached: HealthReport | None = None
        self._cached_at = 0.0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[HealthReport] | None = None

    async def report(self, *, max_age_s: float | None = None) -> HealthReport:
        """The latest report. Within the cache period it is returned as is; a little past it,
        it is still returned at once while one background probe refreshes it (so a request
        never queues behind the probe); older than that, the caller waits for a new probe.
        ``max_age_s`` (the alert evaluator) always waits for a report at most that old."""
        cached, age = self._cached, time.monotonic() - self._cached_at
        if max_age_s is None and cached is not None:
            if age < self.cache_seconds:
                return cached
            # HEALTH_CACHE_SECONDS=0 means "probe on every request": no stale answers either.
            if self.cache_seconds > 0 and age < self.cache_seconds + STALE_GRACE_S:
                self._refresh_in_background()
                return cached
        ttl = self.cache_seconds if max_age_s is None else max_age_s
        if cached is not None and age < ttl:
            return cached
        return await self._refresh(ttl)

    async def _refresh(self, ttl: float) -> HealthReport:
        async with self._lock:
            # Single flight: whoever waited on the lock takes the report just made.
            if self._cached is not None and time.monotonic() - self._cached_at < ttl:
                return self._cached
            report = await self._probe()
            self._cached, self._cached_at = report, time.monotonic()
            return report

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(self._refresh(self.cache_seconds))
            self._background.add_done_callback(_log_failure)

    async def aclose(self) -> None:
        if self._background is not None and not self._background.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._background, PROBE_TIMEOUT_S * 2)
        await self.pings.aclose()

    async def _probe(self) -> HealthReport:
        postgres, redis = await self.pings.ping()
        db_ok, db_ms, db_error = bool(postgres.ok), postgres.ms, postgres.error
        redis_ok, redis_ms = redis.ok, redis.ms
        dependency_up.labels("postgres").set(1 if db_ok else 0)
        if redis_ok is not None:
            dependency_up.labels("redis").set(1 if redis_ok else 0)
        jobs: JobQueueStats | None = None
        jobs_error: str | None = None
        if db_ok and self.providers.job_stats is not None:
            try:
                jobs = await asyncio.wait_for(self.providers.job_stats(), PROBE_TIMEOUT_S)
            except Exception as exc:
                jobs_error = type(exc).__name__
        pool = self.pool_watch.observe()
        process = sample_process()
        memory_ratio = psutil.virtual_memory().percent / 100
        disk = data_dir_disk(self.data_dir)
        checks: list[Check] = [
            Check(
                "postgres:responseTime",
                "datastore",
                "pass" if db_ok else "fail",
                round(db_ms, 2) if db_ok else None,
                "ms",
                None if db_ok else f"unreachable ({db_error})",
            ),
            Check(
                "postgres:connections",
                "datastore",
                "fail" if pool.stays_exhausted else "warn" if pool.exhausted_for_s > 0 else "pass",
                pool.checked_out,
                "connections",
                f"{pool.checked_out} of {pool.capacity} in use",
                {"size": pool.size, "overflow": pool.overflow, "capacity": pool.capacity},
            ),
            self._redis_check(redis_ok, redis_ms),
            self._cache_check(),
            *self._job_checks(jobs, db_ok, jobs_error),
            Check(
                "process:memory",
                "system",
                "warn" if memory_ratio >= MEMORY_WARN_RATIO else "pass",
                int(process["rss_bytes"]),
                "bytes",
                f"host memory {memory_ratio:.0%} used",
                {"host_memory_used_ratio": memory_ratio, "open_fds": process["open_fds"]},
            ),
            Check("process:cpu", "system", "pass", round(process["cpu_percent"], 1), "percent"),
            Check(
                "disk:utilization",
                "system",
                "warn" if disk is not None and disk[0] >= DISK_WARN_RATIO else "pass",
                round(disk[0] * 100, 1) if disk is not None else None,
                "percent",
                "data dir file system" if disk is not None else "data dir not readable",
                {"free_bytes": disk[1]} if disk is not None else {},
            ),
        ]
        return HealthReport(
            checks=tuple(checks),
            at=dt.datetime.now(dt.UTC),
            database_ok=db_ok,
            redis_configured=self.pings.redis_configured,
            redis_ok=redis_ok,
            pool=pool,
            jobs=jobs,
            process=process,
            memory_ratio=memory_ratio,
            disk_ratio=disk[0] if disk is not None else None,
        )

    def _redis_check(self, ok: bool | None, ms: float) -> Check:
        # Redis is optional: without it every use falls back to memory, so never "fail".
        if ok is None:
            return Check(
                "redis:responseTime",
                "datastore",
                "warn",
                None,
                "ms",
                "not configured: cache and rate limits use in-process memory",
            )
        if not ok:
            return Check(
                "redis:responseTime",
                "datastore",
                "warn",
                None,
                "ms",
                "unreachable: cache and rate limits use in-process memory",
            )
        return Check("redis:responseTime", "datastore", "pass", round(ms, 2), "ms")

    def _cache_check(self) -> Check:
        rate = self.cache_hit_rate()
        value = None if rate is None else round(rate * 100, 1)
        cache = self.cache
        if cache is not None and cache.channel is not None and not cache.coherent:
            return Check(
                "cache:hitRate",
                "component",
                "warn",
                value,
                "percent",
                f"{cache.channel} invalidation channel down: memory entries live at most 1 s",
            )
        if rate is None:
            return Check(
                "cache:hitRate",
                "component",
                "pass",
                None,
                "percent",
                "no cache lookups in the last 5 minutes",
            )
        return Check("cache:hitRate", "component", "pass", value, "percent")

    def _job_checks(
        self, jobs: JobQueueStats | None, db_ok: bool, error: str | None
    ) -> list[Check]:
        keys = (
            "jobs:queueDepth",
            "jobs:oldestAge",
            "jobs:failedLastHour",
            "jobs:workerHeartbeatAge",
        )
        if jobs is None or not jobs.installed:
            if not db_ok:
                reason, status = "database unreachable", "fail"
            elif error is not None:
                reason, status = f"job tables unreadable ({error})", "warn"
            else:
                reason, status = "job queue not installed", "pass"
            return [Check(key, "component", status, None, None, reason) for key in keys]  # type: ignore[arg-type]
        heartbeat = jobs.worker_heartbeat_age_s
        stale_worker = jobs.depth > 0 and (heartbeat is None or heartbeat > HEARTBEAT_WARN_S)
        oldest = jobs.oldest_age_s or 0.0
        return [
            Check(
                keys[0], "component", "pass", jobs.depth, "jobs", None, dict(jobs.depth_by_queue)
            ),
            Check(
                keys[1],
                "component",
                "warn" if oldest > QUEUE_OLDEST_WARN_S else "pass",
                round(oldest, 1),
                "s",
            ),
            Check(
                keys[2],
                "component",
                "warn" if jobs.failed_last_hour else "pass",
                jobs.failed_last_hour,
                "jobs",
            ),
            Check(
                keys[3],
                "component",
                "warn" if stale_worker else "pass",
                round(heartbeat, 1) if heartbeat is not None else None,
                "s",
                "no worker heartbeat while jobs wait" if stale_worker else None,
            ),
        ]
