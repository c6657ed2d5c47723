"""Request, error, latency, login-failure and cache counts over a sliding window, for the alert
rules and the status dashboard.

Each process samples the cumulative Prometheus counters (aggregated over every server worker of
the host in multiprocess mode) and keeps the samples of the last minutes; a window's numbers
are the difference between the newest sample and the one a window ago, exactly what
Prometheus' ``increase()`` computes. With Redis, every host publishes its window and any node
can add them up into the cluster's numbers."""

from __future__ import annotations

import math
import os
import socket
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from chainconsult.infra.monitoring.http_metrics import PROBE_ROUTES
from chainconsult.infra.monitoring.metrics import (
    NAMESPACE,
    auth_failures_total,
    cache_requests_total,
    http_request_duration_seconds,
    http_requests_total,
)
from chainconsult.infra.monitoring.multiproc import multiprocess_dir

_REQUESTS = f"{NAMESPACE}_http_requests_total"
_BUCKET = f"{NAMESPACE}_http_request_duration_seconds_bucket"
_AUTH = f"{NAMESPACE}_auth_failures_total"
_CACHE = f"{NAMESPACE}_cache_requests_total"
_WANTED = {"http_requests", "http_request_duration_seconds", "auth_failures", "cache_requests"}
SLOW_ROUTES = frozenset({"/api/v2/auth/register", "/api/v2/auth/login", "/api/v2/me"})
"""Routes slow by design: each checks or hashes a password with argon2 (0.5-1 s of CPU on two
cores). Their latency is judged on its own budget, apart from every other route's; a new
route that checks a password belongs here (and in deploy/prometheus/alerts.yml)."""
Buckets = tuple[tuple[float, float], ...]
"""(upper bound in seconds, cumulative count), ascending, ending with +Inf."""


def _minus(later: Buckets, earlier: Buckets) -> Buckets:
    before = dict(earlier)
    return tuple((le, max(0.0, n - before.get(le, 0.0))) for le, n in later)


def _plus(one: Buckets, other: Buckets) -> Buckets:
    merged: dict[float, float] = dict(one)
    for le, n in other:
        merged[le] = merged.get(le, 0.0) + n
    return tuple(sorted(merged.items()))


def _buckets_json(buckets: Buckets) -> list[list[float | None]]:
    # JSON has no infinity: +Inf travels as null.
    return [[None if math.isinf(le) else le, n] for le, n in buckets]


def _buckets_from_json(raw: list[list[float | None]]) -> Buckets:
    return tuple((math.inf if le is None else float(le), float(n or 0.0)) for le, n in raw)


@dataclass(frozen=True, slots=True)
class TrafficCounts:
    """Counts: cumulative ones in a sample, or the increase over a window."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: Buckets = ()
    """Request durations of every route but ``SLOW_ROUTES``."""
    slow_buckets: Buckets = ()
    """Request durations of ``SLOW_ROUTES``."""
    auth_failures: float = 0.0
    cache_hits: float = 0.0
    cache_misses: float = 0.0

    def minus(self, earlier: TrafficCounts) -> TrafficCounts:
        return TrafficCounts(
            requests=max(0.0, self.requests - earlier.requests),
            errors=max(0.0, self.errors - earlier.errors),
            buckets=_minus(self.buckets, earlier.buckets),
            slow_buckets=_minus(self.slow_buckets, earlier.slow_buckets),
            auth_failures=max(0.0, self.auth_failures - earlier.auth_failures),
            cache_hits=max(0.0, self.cache_hits - earlier.cache_hits),
            cache_misses=max(0.0, self.cache_misses - earlier.cache_misses),
        )

    def plus(self, other: TrafficCounts) -> TrafficCounts:
        return TrafficCounts(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            buckets=_plus(self.buckets, other.buckets),
            slow_buckets=_plus(self.slow_buckets, other.slow_buckets),
            auth_failures=self.auth_failures + other.auth_failures,
            cache_hits=self.cache_hits + other.cache_hits,
            cache_misses=self.cache_misses + other.cache_misses,
        )


@dataclass(frozen=True, slots=True)
class TrafficStats:
    """What happened over ``seconds``."""

    seconds: float
    counts: TrafficCounts = field(default_factory=TrafficCounts)

    @property
    def request_rate(self) -> float:
        return self.counts.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float | None:
        """Share of requests answered with a 5xx; None without requests."""
        if self.counts.requests <= 0:
            return None
        return self.counts.errors / self.counts.requests

    @property
    def cache_hit_rate(self) -> float | None:
        total = self.counts.cache_hits + self.counts.cache_misses
        return self.counts.cache_hits / total if total > 0 else None

    def latency_quantile(self, q: float) -> float | None:
        """Seconds, interpolated inside the histogram bucket like PromQL's
        ``histogram_quantile``; None without requests. ``SLOW_ROUTES`` left out."""
        return histogram_quantile(q, self.counts.buckets)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "seconds": self.seconds,
                "at": time.time(),
                "requests": self.counts.requests,
                "errors": self.counts.errors,
                "buckets": _buckets_json(self.counts.buckets),
                "slow_buckets": _buckets_json(self.counts.slow_buckets),
                "auth_failures": self.counts.auth_failures,
                "cache_hits": self.counts.cache_hits,
                "cache_misses": self.counts.cache_misses,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> tuple[TrafficStats, float]:
        data: dict[str, Any] = orjson.loads(raw)
        counts = TrafficCounts(
            requests=float(data["requests"]),
            errors=float(data["errors"]),
            buckets=_buckets_from_json(data["buckets"]),
            # Absent from what a node of an older release published.
            slow_buckets=_buckets_from_json(data.get("slow_buckets", [])),
            auth_failures=float(data["auth_failures"]),
            cache_hits=float(data["cache_hits"]),
            cache_misses=float(data["cache_misses"]),
        )
        return cls(seconds=float(data["seconds"]), counts=counts), float(data["at"])

    def plus(self, other: TrafficStats) -> TrafficStats:
        return TrafficStats(
            seconds=max(self.seconds, other.seconds), counts=self.counts.plus(other.counts)
        )


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in ordered:
        if count >= rank:
            if math.isinf(upper_bound):
                return lower_bound
            if count == lower_count:
                return upper_bound
            return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def _families() -> Iterable[Metric]:
    path = multiprocess_dir()
    if path is not None:
        return [
            m
            for m in MultiProcessCollector(None, path=str(path)).collect()  # type: ignore[no-untyped-call]
            if m.name.removeprefix(f"{NAMESPACE}_") in _WANTED
        ]
    metrics = (
        http_requests_total,
        http_request_duration_seconds,
        auth_failures_total,
        cache_requests_total,
    )
    return [family for metric in metrics for family in metric.collect()]


def read_counts() -> TrafficCounts:
    """The cumulative counts right now (the whole host in multiprocess mode), health probes and
    metric scrapes left out (see ``PROBE_ROUTES``)."""
    requests = errors = auth = hits = misses = 0.0
    buckets: dict[float, float] = {}
    slow_buckets: dict[float, float] = {}
    for family in _families():
        for sample in family.samples:
            if sample.labels.get("route") in PROBE_ROUTES:
                continue
            if sample.name == _REQUESTS:
                requests += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    errors += sample.value
            elif sample.name == _BUCKET:
                le = float(sample.labels["le"])
                into = slow_buckets if sample.labels.get("route") in SLOW_ROUTES else buckets
                into[le] = into.get(le, 0.0) + sample.value
            elif sample.name == _AUTH:
                auth += sample.value
            elif sample.name == _CACHE:
                if sample.labels.get("result") == "hit":
                    hits += sample.value
                elif sample.labels.get("result") == "miss":
                    misses += sample.value
    return TrafficCounts(
        requests=requests,
        errors=errors,
        buckets=tuple(sorted(buckets.items())),
        slow_buckets=tuple(sorted(slow_buckets.items())),
        auth_failures=auth,
        cache_hits=hits,
        cache_misses=misses,
    )


class TrafficWindow:
    """The samples of the last ``keep_seconds`` of this host."""

    def __init__(self, keep_seconds: float = 3900.0) -> None:
        self.keep_seconds = keep_seconds
        self._samples: deque[tuple[float, TrafficCounts]] = deque()

    def record(self, counts: TrafficCounts | None = None, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, counts if counts is not None else read_counts()))
        while self._samples and self._samples[0][0] < now - self.keep_seconds:
            self._samples.popleft()

    def stats(self, seconds: float) -> TrafficStats:
        """The increase over the last ``seconds`` (or over what was seen, when younger)."""
        if not self._samples:
            return TrafficStats(seconds=seconds)
        newest_at, newest = self._samples[-1]
        # The oldest sample inside the window; with only the newest inside, the one before it.
        baseline_at, baseline = self._samples[0]
        for index, (at, counts) in enumerate(self._samples):
            if at >= newest_at - seconds:
                if at == newest_at and index > 0:
                    at, counts = self._samples[index - 1]
                baseline_at, baseline = at, counts
                break
        if baseline_at == newest_at:
            return TrafficStats(seconds=seconds)
        return TrafficStats(seconds=newest_at - baseline_at, counts=newest.minus(baseline))


def node_key() -> str:
    """This host's name in the shared window table: every worker of one host publishes the
    same host-wide numbers under the same key, so they are counted once."""
    path = multiprocess_dir()
    return f"{socket.gethostname()}:{path if path is not None else f'pid-{os.getpid()}'}"


class TrafficExchange:
    """Hosts share their window numbers through one Redis hash (best effort: without Redis each
    node only knows its own traffic)."""

    def __init__(self, redis: Any, key_prefix: str, *, stale_after_s: float) -> None:
        self.redis = redis
        self.key = f"{key_prefix}:monitoring:traffic"
        self.stale_after_s = stale_after_s

    async def publish(self, stats: TrafficStats, node: str) -> None:
        await self.redis.hset(self.key, node, stats.to_json())
        await self.redis.pexpire(self.key, int(self.stale_after_s * 1000 * 4))

    async def cluster(self, local: TrafficStats, node: str) -> TrafficStats:
        """The sum over every host that published recently; our own numbers are the local
        ones (fresher than what we published)."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.key)
        total = local
        now = time.time()
        stale: list[bytes] = []
        for name, value in raw.items():
            if name.decode() == node:
                continue
            stats, at = TrafficStats.from_json(value)
            if now - at > self.stale_after_s:
                stale.append(name)
                continue
            total = total.plus(stats)
        if stale:
            await self.redis.hdel(self.key, *stale)
        return total
