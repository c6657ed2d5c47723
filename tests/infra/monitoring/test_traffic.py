"""Window arithmetic behind the rate rules and the dashboard numbers."""

from __future__ import annotations

import math

import pytest

from chainconsult.infra.monitoring.http_metrics import PROBE_ROUTES
from chainconsult.infra.monitoring.metrics import (
    http_request_duration_seconds,
    http_requests_total,
)
from chainconsult.infra.monitoring.traffic import (
    SLOW_ROUTES,
    TrafficCounts,
    TrafficStats,
    TrafficWindow,
    histogram_quantile,
    read_counts,
)

INF = math.inf


def test_quantile_interpolates_inside_the_bucket_like_promql() -> None:
    # 100 requests: 50 under 0.1 s, 40 between 0.1 and 0.5 s, 10 between 0.5 and 1 s.
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]

    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert histogram_quantile(0.95, []) is None
    # Everything above the last finite bound: the answer is that bound, as in PromQL.
    assert histogram_quantile(0.95, [(1.0, 0.0), (INF, 10.0)]) == 1.0


def test_window_reports_the_increase_over_its_span() -> None:
    window = TrafficWindow()
    window.record(TrafficCounts(requests=100, errors=1, buckets=((0.1, 90.0), (INF, 100.0))), now=0)
    window.record(
        TrafficCounts(requests=150, errors=1, buckets=((0.1, 130.0), (INF, 150.0))), now=200
    )
    window.record(
        TrafficCounts(requests=400, errors=51, buckets=((0.1, 330.0), (INF, 400.0))), now=400
    )

    stats = window.stats(300)

    assert stats.seconds == 200
    assert stats.counts.requests == 250
    assert stats.error_rate == pytest.approx(0.2)
    assert stats.request_rate == pytest.approx(1.25)
    assert stats.counts.buckets == ((0.1, 200.0), (INF, 250.0))


def test_stats_travel_between_nodes_and_add_up() -> None:
    one = TrafficStats(
        60,
        TrafficCounts(
            requests=10, errors=1, buckets=((0.5, 9.0), (INF, 10.0)), cache_hits=3, cache_misses=1
        ),
    )
    other = TrafficStats(
        60,
        TrafficCounts(
            requests=30, errors=0, buckets=((0.5, 30.0), (INF, 30.0)), cache_hits=1, cache_misses=3
        ),
    )

    received, _at = TrafficStats.from_json(other.to_json())
    total = one.plus(received)

    assert total.counts.requests == 40
    assert total.error_rate == pytest.approx(0.025)
    assert total.cache_hit_rate == pytest.approx(0.5)
    assert total.counts.buckets == ((0.5, 39.0), (INF, 40.0))


def test_probes_and_scrapes_stay_out_of_the_window() -> None:
    """A load balancer polling /readyz on a node whose database is down gets 503s: that is the
    probe working, and must not raise the error rate that pages on failed user requests."""
    before = read_counts()
    for route in PROBE_ROUTES:
        http_requests_total.labels("GET", route, "503").inc(10)
    http_requests_total.labels("GET", "/api/v2/experts", "200").inc(3)
    http_requests_total.labels("POST", "/api/v2/projects", "503").inc()

    increase = read_counts().minus(before)

    assert increase.requests == 4
    assert increase.errors == 1


def test_password_routes_are_timed_apart_from_the_rest_and_travel_between_nodes() -> None:
    before = read_counts()
    for route in SLOW_ROUTES:
        http_request_duration_seconds.labels("POST", route).observe(0.8)
    http_request_duration_seconds.labels("GET", "/api/v2/experts").observe(0.02)

    increase = TrafficStats(60, read_counts().minus(before))
    received, _at = TrafficStats.from_json(increase.to_json())

    assert dict(received.counts.slow_buckets)[1.0] == len(SLOW_ROUTES)
    assert dict(received.counts.slow_buckets)[0.5] == 0
    assert dict(received.counts.buckets)[0.025] == 1
    assert dict(received.counts.buckets)[INF] == 1
