"""Watching recovery from the outside: the brief health verdict polled on fresh connections
(so every server worker is asked in turn), and latency around a moment."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

import httpx
from bench.chaos._load import Outcome


@dataclass
class HealthWatch:
    """Polls `GET /api/health` every ``interval`` s; keeps (time, status or None)."""

    base_url: str
    interval: float = 0.1
    samples: list[tuple[float, str | None]] = field(default_factory=list)

    async def run(self, until: float) -> None:
        async with httpx.AsyncClient(
            base_url=self.base_url,
            timeout=2,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http:
            while time.monotonic() < until:
                started = time.monotonic()
                try:
                    response = await http.get("/api/health")
                    status = str(response.json().get("status"))
                except (httpx.HTTPError, ValueError):
                    status = None
                self.samples.append((started, status))
                await asyncio.sleep(self.interval)

    def first(self, status: str, after: float) -> float | None:
        """Seconds from ``after`` until the first sample with ``status``."""
        for moment, seen in self.samples:
            if moment >= after and seen == status:
                return moment - after
        return None

    def settled(self, status: str, after: float) -> float | None:
        """Seconds from ``after`` until every later sample says ``status``."""
        later = [(moment, seen) for moment, seen in self.samples if moment >= after]
        if not later or later[-1][1] != status:
            return None
        settled_at = later[-1][0]
        for moment, seen in reversed(later):
            if seen != status:
                break
            settled_at = moment
        return settled_at - after


def latency_ms(outcomes: list[Outcome], start: float, end: float) -> str:
    """p50 / p99 of the successful requests that started in [start, end)."""
    durations = sorted(
        (o.ended - o.started) * 1000 for o in outcomes if start <= o.started < end and not o.failed
    )
    if len(durations) < 2:
        return "-"
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    return f"{statistics.median(durations):.1f} / {p99:.1f} ms ({len(durations)} requests)"


def seconds(value: float | None) -> str:
    return "never" if value is None or value != value else f"{value:.2f} s"
