"""Hits and misses per cache name: this process's stats (detailed health) and its Prometheus
counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chainconsult.infra.monitoring.metrics import cache_requests_total


@dataclass(slots=True)
class QueryStats:
    l1_hits: int = 0
    l2_hits: int = 0
    coalesced: int = 0
    """Callers that waited for another caller's load instead of running their own."""
    misses: int = 0

    @property
    def hits(self) -> int:
        return self.l1_hits + self.l2_hits + self.coalesced

    def as_dict(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / total, 4) if total else None,
            "l1_hits": self.l1_hits,
            "l2_hits": self.l2_hits,
            "coalesced": self.coalesced,
        }


@dataclass(slots=True)
class NameCounters:
    """What one cache name counts: its stats for health, its Prometheus children."""

    stats: QueryStats = field(default_factory=QueryStats)
    hit: Any = None
    miss: Any = None

    @classmethod
    def labelled(cls, name: str) -> NameCounters:
        return cls(
            hit=cache_requests_total.labels(cache=name, result="hit"),
            miss=cache_requests_total.labels(cache=name, result="miss"),
        )
