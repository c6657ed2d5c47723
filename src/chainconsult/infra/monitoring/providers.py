"""What monitoring reads from parts other modules own (the job queue, caches, slow queries),
behind a small registry the application lifespan fills. Monitoring never imports those modules:
a module that knows better registers its own function under the same name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class JobQueueStats:
    installed: bool
    """False while the job tables do not exist (job support not migrated in)."""
    depth_by_queue: dict[str, int] = field(default_factory=dict)
    oldest_age_s: float | None = None
    failed_last_hour: int = 0
    worker_heartbeat_age_s: float | None = None
    """Seconds since the freshest worker heartbeat; None when no worker ever registered."""

    @property
    def depth(self) -> int:
        return sum(self.depth_by_queue.values())


JobStatsProvider = Callable[[], Awaitable[JobQueueStats]]
RecentRowsProvider = Callable[[int], Awaitable[list[dict[str, Any]]]]
CacheHitRatesProvider = Callable[[], Awaitable[dict[str, float]]]


@dataclass(slots=True)
class MonitoringProviders:
    """Named data sources; ``None`` means "not available in this deployment"."""

    job_stats: JobStatsProvider | None = None
    failed_jobs: RecentRowsProvider | None = None
    """Most recent jobs that failed for good, newest first: id, task, queue, attempts, at."""
    slow_queries: RecentRowsProvider | None = None
    """Recent or worst statements above SLOW_QUERY_MS: sql, duration_ms, at."""
    cache_hit_rates: CacheHitRatesProvider | None = None
    """Hit rate (0-1) per cache name, when a cache module keeps finer numbers than the
    ``cache_requests_total`` counter the dashboard reads by default."""
