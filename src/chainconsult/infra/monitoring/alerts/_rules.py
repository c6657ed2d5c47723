"""The built-in alert rules. deploy/prometheus/alerts.yml holds the same rules in PromQL for
deployments that alert from Prometheus; keep the two in step."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chainconsult.infra.health.checks import HealthReport
from chainconsult.infra.monitoring.alerts._model import Severity
from chainconsult.infra.monitoring.traffic import TrafficStats, histogram_quantile


@dataclass(frozen=True, slots=True)
class Thresholds:
    window_s: float = 300.0
    """The window of the rate rules (error rate, latency, login failures)."""
    min_requests: int = 20
    """Fewer requests than this in the window say nothing about the error rate."""
    error_rate: float = 0.05
    p95_s: float = 0.5
    """Latency budget of every route but the deliberately slow ones (``SLOW_ROUTES``)."""
    slow_p95_s: float = 2.5
    """Latency budget of the deliberately slow routes: one argon2 check takes 0.5-1 s on two
    cores, so only a queue for the hasher takes their p95 past this."""
    latency_min_requests: int = 50
    """Requests of one budget in the window before its p95 means anything (of 20, the p95
    is the slowest but one: a few logins are not a latency problem)."""
    clear_ratio: float = 0.8
    """A firing traffic alert stays until its number is below this share of the threshold
    (hysteresis: a number hovering at the threshold does not flap)."""
    failed_jobs_per_hour: int = 5
    auth_failures_per_window: int = 50
    queue_depth: int = 1000
    oldest_job_s: float = 600.0
    memory_ratio: float = 0.90
    disk_medium_ratio: float = 0.90
    disk_low_ratio: float = 0.80
    backup_max_age_s: float = 26 * 3600.0
    """BACKUP_MAX_AGE_HOURS: the newest verified backup may be this old."""


@dataclass(frozen=True, slots=True)
class BackupAge:
    newest_at: float | None
    """When the newest verified backup was taken (epoch seconds); None: none found."""
    age_s: float
    """Seconds since then or, with none found, since this process started looking (a new
    deployment has until its first scheduled backup)."""


@dataclass(frozen=True, slots=True)
class Signals:
    health: HealthReport
    traffic: TrafficStats
    backups: BackupAge | None = None
    """None where backups are not watched."""
    escrow_differences: float | None = None
    """What the last escrow reconciliation found (the gauge
    chainconsult_escrow_reconciliation_differences); None: no reconciliation seen."""


@dataclass(frozen=True, slots=True)
class Finding:
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


Evaluate = Callable[[Signals, Thresholds], Finding | None]


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    severity: Severity
    evaluate: Evaluate
    fire_after: int = 1
    """Consecutive evaluations the condition must hold before the alert fires."""
    resolve_after: int = 2
    """Consecutive clean evaluations before it resolves (no flapping on one good probe)."""
    still_firing: Evaluate | None = None
    """The condition that keeps a firing alert firing, laxer than ``evaluate``
    (hysteresis); None: ``evaluate``."""
    resolve_after_s: float = 0.0
    """Seconds the condition must have been clear, on top of ``resolve_after``."""

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"chainconsult/{self.name}".encode()).hexdigest()


def _database_down(s: Signals, t: Thresholds) -> Finding | None:
    if s.health.database_ok:
        return None
    check = s.health.check("postgres:responseTime")
    return Finding(
        "PostgreSQL is unreachable: requests that need the database fail",
        {"probe": check.output if check is not None else "unreachable"},
    )


def _window(t: Thresholds) -> str:
    """The window as docs/monitoring.md states it: what the rule looks at, whatever part of it this
    process has seen so far."""
    minutes, seconds = divmod(round(t.window_s), 60)
    return f"the last {minutes} min" if minutes and not seconds else f"the last {t.window_s:.0f} s"


def _error_rate(*, staying: bool) -> Evaluate:
    def evaluate(s: Signals, t: Thresholds) -> Finding | None:
        rate = s.traffic.error_rate
        limit = t.error_rate * (t.clear_ratio if staying else 1.0)
        if s.traffic.counts.requests < t.min_requests or rate is None or rate <= limit:
            return None
        return Finding(
            f"{rate:.1%} of requests failed with 5xx over {_window(t)} "
            f"(threshold {t.error_rate:.0%})",
            {"requests": s.traffic.counts.requests, "errors": s.traffic.counts.errors},
        )

    return evaluate


def _latency(*, staying: bool) -> Evaluate:
    """Each latency budget on its own requests: a few deliberately slow logins neither count
    against the API's 500 ms nor, being few, against their own budget."""

    def evaluate(s: Signals, t: Thresholds) -> Finding | None:
        ratio = t.clear_ratio if staying else 1.0
        budgets = (
            ("p95 latency", s.traffic.counts.buckets, t.p95_s),
            (
                "p95 latency of password-checking routes",
                s.traffic.counts.slow_buckets,
                t.slow_p95_s,
            ),
        )
        for what, buckets, budget in budgets:
            requests = buckets[-1][1] if buckets else 0.0
            p95 = histogram_quantile(0.95, buckets)
            if requests < t.latency_min_requests or p95 is None or p95 <= budget * ratio:
                continue
            return Finding(
                f"{what} {p95 * 1000:.0f} ms over {_window(t)} "
                f"(threshold {budget * 1000:.0f} ms, {requests:.0f} requests)",
                {"p95_ms": round(p95 * 1000, 1), "requests": requests, "budget_ms": budget * 1000},
            )
        return None

    return evaluate


def _failed_jobs(s: Signals, t: Thresholds) -> Finding | None:
    jobs = s.health.jobs
    if jobs is None or jobs.failed_last_hour < t.failed_jobs_per_hour:
        return None
    return Finding(
        f"{jobs.failed_last_hour} jobs failed for good in the last hour",
        {"failed_last_hour": jobs.failed_last_hour},
    )


def _brute_force(s: Signals, t: Thresholds) -> Finding | None:
    failures = s.traffic.counts.auth_failures
    if failures < t.auth_failures_per_window:
        return None
    return Finding(
        f"{failures:.0f} failed logins over {_window(t)}: possible brute force",
        {"auth_failures": failures},
    )


def _redis_fallback(s: Signals, t: Thresholds) -> Finding | None:
    if not s.health.redis_configured or s.health.redis_ok:
        return None
    return Finding("Redis is unreachable: cache and rate limits fell back to process memory")


def _queue_backlog(s: Signals, t: Thresholds) -> Finding | None:
    jobs = s.health.jobs
    if jobs is None or not jobs.installed:
        return None
    oldest = jobs.oldest_age_s or 0.0
    if jobs.depth <= t.queue_depth and oldest <= t.oldest_job_s:
        return None
    return Finding(
        f"{jobs.depth} jobs waiting, the oldest for {oldest:.0f} s",
        {"depth": jobs.depth, "oldest_age_s": oldest, "by_queue": jobs.depth_by_queue},
    )


def _memory(s: Signals, t: Thresholds) -> Finding | None:
    if s.health.memory_ratio < t.memory_ratio:
        return None
    return Finding(
        f"host memory {s.health.memory_ratio:.0%} used",
        {"rss_bytes": s.health.process.get("rss_bytes")},
    )


def _disk(limit: Callable[[Thresholds], float]) -> Evaluate:
    def evaluate(s: Signals, t: Thresholds) -> Finding | None:
        ratio = s.health.disk_ratio
        if ratio is None or ratio < limit(t):
            return None
        return Finding(f"data dir file system {ratio:.0%} full", {"used_ratio": ratio})

    return evaluate


def _backup_stale(s: Signals, t: Thresholds) -> Finding | None:
    backups = s.backups
    if backups is None or backups.age_s <= t.backup_max_age_s:
        return None
    hours, limit = backups.age_s / 3600, t.backup_max_age_s / 3600
    if backups.newest_at is None:
        return Finding(
            f"no verified backup found in {hours:.0f} h (limit {limit:g} h): "
            "is the scheduled backup running?",
            {"age_hours": round(hours, 1)},
        )
    return Finding(
        f"the newest verified backup is {hours:.1f} h old (limit {limit:g} h)",
        {"age_hours": round(hours, 1), "newest_at": backups.newest_at},
    )


def _escrow_difference(s: Signals, t: Thresholds) -> Finding | None:
    # Any difference between the database and the escrow contract is money the platform
    # misreports: no threshold, no delay.
    if not s.escrow_differences:
        return None
    count = int(s.escrow_differences)
    return Finding(
        f"the last escrow reconciliation found {count} milestone(s) whose database state "
        "differs from the escrow contract (or a contract not matching the fee settings): "
        "see the escrow_reconciliation_difference log entries",
        {"differences": count},
    )


TRAFFIC_RESOLVE_AFTER_S = 120.0
"""A traffic alert resolves after its number stayed below the clear level this long
(Prometheus: ``keep_firing_for: 2m``)."""

RULES: tuple[AlertRule, ...] = (
    AlertRule("database_down", Severity.critical, _database_down, fire_after=2),
    AlertRule(
        "high_error_rate",
        Severity.high,
        _error_rate(staying=False),
        still_firing=_error_rate(staying=True),
        resolve_after_s=TRAFFIC_RESOLVE_AFTER_S,
    ),
    AlertRule(
        "high_latency_p95",
        Severity.high,
        _latency(staying=False),
        still_firing=_latency(staying=True),
        resolve_after_s=TRAFFIC_RESOLVE_AFTER_S,
    ),
    AlertRule("failed_jobs", Severity.high, _failed_jobs),
    AlertRule("brute_force_spike", Severity.high, _brute_force),
    AlertRule("redis_fallback", Severity.medium, _redis_fallback, fire_after=2),
    AlertRule("job_queue_backlog", Severity.medium, _queue_backlog),
    AlertRule("memory_high", Severity.medium, _memory, fire_after=3),
    AlertRule("disk_almost_full", Severity.medium, _disk(lambda t: t.disk_medium_ratio)),
    AlertRule("disk_filling", Severity.low, _disk(lambda t: t.disk_low_ratio)),
    # A new backup is a plain fact, not a noisy number: the first evaluation that sees it
    # resolves the alert.
    AlertRule("backup_stale", Severity.high, _backup_stale, resolve_after=1),
    # Fires on the first reconciliation that finds a difference and resolves on the first
    # that finds none (each reconciliation is a complete, fresh comparison).
    AlertRule(
        "escrow_reconciliation_difference",
        Severity.critical,
        _escrow_difference,
        resolve_after=1,
    ),
)
