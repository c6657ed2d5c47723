"""Each built-in rule against the signals that should and should not trigger it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest

from chainconsult.infra.health.checks import Check, HealthReport, PoolState
from chainconsult.infra.monitoring.alerts import RULES, Severity, Signals, Thresholds
from chainconsult.infra.monitoring.providers import JobQueueStats
from chainconsult.infra.monitoring.traffic import TrafficCounts, TrafficStats

RULE = {rule.name: rule for rule in RULES}
CALM = HealthReport(
    checks=(Check("postgres:responseTime", "datastore", "pass", 1.0, "ms"),),
    at=dt.datetime.now(dt.UTC),
    database_ok=True,
    redis_configured=True,
    redis_ok=True,
    pool=PoolState(
        size=20, checked_out=1, overflow=0, capacity=30, exhausted_for_s=0, stays_exhausted=False
    ),
    jobs=JobQueueStats(installed=True, depth_by_queue={"default": 3}, oldest_age_s=2.0),
    process={"rss_bytes": 100e6, "cpu_percent": 5.0, "open_fds": 20.0},
    memory_ratio=0.4,
    disk_ratio=0.3,
)


def traffic(requests: float, errors: float = 0, slow: float = 0, auth: float = 0) -> TrafficStats:
    fast = requests - slow
    buckets = ((0.1, fast), (0.5, fast), (1.0, requests), (math.inf, requests))
    counts = TrafficCounts(requests=requests, errors=errors, buckets=buckets, auth_failures=auth)
    return TrafficStats(seconds=300, counts=counts)


def with_p95(p95_ms: float, requests: float = 200) -> TrafficStats:
    """``requests`` API requests over the window whose interpolated p95 is ``p95_ms``: a
    share ``fast`` of them under 100 ms, the rest inside the bucket holding ``p95_ms``."""
    bounds = (0.1, 0.25, 0.5, 1.0, 2.5)
    upper = next(bound for bound in bounds if bound > p95_ms / 1000)
    lower = bounds[bounds.index(upper) - 1]
    fraction = (p95_ms / 1000 - lower) / (upper - lower)
    fast = (0.95 - fraction) / (1 - fraction)
    buckets = tuple((bound, requests * (fast if bound < upper else 1)) for bound in bounds)
    counts = TrafficCounts(requests=requests, buckets=(*buckets, (math.inf, requests)))
    stats = TrafficStats(seconds=300, counts=counts)
    assert stats.latency_quantile(0.95) == pytest.approx(p95_ms / 1000)
    return stats


def fired(name: str, health: HealthReport = CALM, stats: TrafficStats | None = None) -> bool:
    signals = Signals(health=health, traffic=stats or traffic(100))
    return RULE[name].evaluate(signals, Thresholds()) is not None


def test_a_calm_system_raises_nothing() -> None:
    signals = Signals(health=CALM, traffic=traffic(1000, errors=3))
    assert [rule.name for rule in RULES if rule.evaluate(signals, Thresholds())] == []


def test_database_down_is_critical_and_waits_for_a_second_failure() -> None:
    down = dataclasses.replace(CALM, database_ok=False)
    assert fired("database_down", down)
    assert RULE["database_down"].severity is Severity.critical
    assert RULE["database_down"].fire_after == 2


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (traffic(100, errors=6), True),
        (traffic(100, errors=5), False),  # exactly 5 % is not above 5 %
        (traffic(10, errors=10), False),  # too few requests to judge
    ],
)
def test_error_rate_above_five_percent(stats: TrafficStats, expected: bool) -> None:
    assert fired("high_error_rate", stats=stats) is expected


def test_p95_above_500_ms() -> None:
    assert fired("high_latency_p95", stats=traffic(100, slow=10))
    assert not fired("high_latency_p95", stats=traffic(100, slow=4))


def test_latency_is_not_judged_on_fewer_than_fifty_requests() -> None:
    assert not fired("high_latency_p95", stats=traffic(49, slow=49))
    assert fired("high_latency_p95", stats=traffic(50, slow=50))


def with_logins(api: float, logins: float, login_s: float) -> TrafficStats:
    """``api`` fast requests and ``logins`` on the password routes taking ``login_s``."""
    counts = dataclasses.replace(
        traffic(api).counts,
        requests=api + logins,
        slow_buckets=(
            *((le, logins if le >= login_s else 0.0) for le in (1.0, 2.5, 5.0)),
            (math.inf, logins),
        ),
    )
    return TrafficStats(seconds=300, counts=counts)


def test_password_routes_are_judged_on_their_own_budget() -> None:
    # Argon2 logins of about a second: never against the API's 500 ms.
    assert not fired("high_latency_p95", stats=with_logins(100, 20, login_s=1.0))
    assert not fired("high_latency_p95", stats=with_logins(100, 200, login_s=1.0))
    # A queue for the hasher: many logins past their 2.5 s budget.
    finding = RULE["high_latency_p95"].evaluate(
        Signals(health=CALM, traffic=with_logins(100, 60, login_s=5.0)), Thresholds()
    )
    assert finding is not None
    assert "password-checking routes" in finding.summary
    assert "threshold 2500 ms" in finding.summary


def test_traffic_alert_summaries_name_the_rule_window_not_the_time_seen_so_far() -> None:
    young = dataclasses.replace(traffic(100, errors=50, slow=50, auth=60), seconds=20)
    signals = Signals(health=CALM, traffic=young)
    for name in ("high_error_rate", "high_latency_p95", "brute_force_spike"):
        finding = RULE[name].evaluate(signals, Thresholds())
        assert finding is not None
        assert "the last 5 min" in finding.summary
        assert "20 s" not in finding.summary


@pytest.mark.parametrize(
    ("name", "hovering", "calm"),
    [
        ("high_error_rate", traffic(100, errors=5), traffic(100, errors=3)),
        ("high_latency_p95", with_p95(450), with_p95(350)),
    ],
)
def test_a_firing_traffic_alert_stays_until_clearly_below_its_threshold(
    name: str, hovering: TrafficStats, calm: TrafficStats
) -> None:
    rule = RULE[name]
    assert rule.still_firing is not None
    assert rule.evaluate(Signals(CALM, hovering), Thresholds()) is None
    assert rule.still_firing(Signals(CALM, hovering), Thresholds()) is not None
    assert rule.still_firing(Signals(CALM, calm), Thresholds()) is None
    assert rule.resolve_after_s == 120


def test_failed_jobs_and_backlog() -> None:
    failing = dataclasses.replace(CALM, jobs=JobQueueStats(installed=True, failed_last_hour=5))
    deep = dataclasses.replace(
        CALM, jobs=JobQueueStats(installed=True, depth_by_queue={"low": 1001})
    )
    stuck = dataclasses.replace(CALM, jobs=JobQueueStats(installed=True, oldest_age_s=601.0))
    absent = dataclasses.replace(CALM, jobs=JobQueueStats(installed=False))
    assert fired("failed_jobs", failing)
    assert fired("job_queue_backlog", deep)
    assert fired("job_queue_backlog", stuck)
    assert not fired("job_queue_backlog", absent)


def test_brute_force_spike() -> None:
    assert fired("brute_force_spike", stats=traffic(100, auth=50))
    assert not fired("brute_force_spike", stats=traffic(100, auth=49))


def test_redis_fallback_only_when_redis_is_configured() -> None:
    assert fired("redis_fallback", dataclasses.replace(CALM, redis_ok=False))
    assert not fired(
        "redis_fallback", dataclasses.replace(CALM, redis_configured=False, redis_ok=None)
    )


def test_memory_and_disk_thresholds() -> None:
    assert fired("memory_high", dataclasses.replace(CALM, memory_ratio=0.95))
    assert fired("disk_filling", dataclasses.replace(CALM, disk_ratio=0.85))
    assert not fired("disk_almost_full", dataclasses.replace(CALM, disk_ratio=0.85))
    assert fired("disk_almost_full", dataclasses.replace(CALM, disk_ratio=0.95))
    assert RULE["disk_filling"].severity is Severity.low
