"""Chaos 1: Redis killed (SIGKILL) under load and started again, empty, seconds later.

Redis holds the cache's shared level, the rate-limit counters and the cross-process
invalidations; every use falls back to process memory while it is down. Expected: no failed
request at all, no write lost, no cached read staler than the documented second, health
`warn` while Redis is down and `pass` again once it is back."""

from __future__ import annotations

import asyncio
import time

import redis
from bench.chaos._load import Load, prepare
from bench.chaos._report import (
    FaultWindow,
    ScenarioReport,
    audit_jobs,
    audit_writes,
    last_failure_after,
    wait_for_jobs,
)
from bench.chaos._stack import Stack, StackOptions
from bench.chaos._watch import HealthWatch, latency_ms, seconds

NAME = "redis"


async def run(*, quick: bool = False) -> ScenarioReport:
    warmup, down, after = (4.0, 4.0, 6.0) if quick else (8.0, 6.0, 10.0)
    with Stack(StackOptions(server_workers=2, job_workers=1)) as stack:
        assert stack.redis is not None
        fixtures = prepare(stack)
        load = Load(stack.base_url, fixtures)
        duration = warmup + down + after
        t0 = time.monotonic()
        health = HealthWatch(stack.base_url)
        traffic = asyncio.gather(load.run(duration), health.run(t0 + duration))

        await asyncio.sleep(warmup)
        killed = time.monotonic()
        await asyncio.to_thread(stack.redis.kill)
        gone = time.monotonic()
        await asyncio.sleep(down)
        restarted = time.monotonic()
        await asyncio.to_thread(stack.redis.start)
        await traffic

        # Back on Redis: the processes write rate-limit counters and cache entries there again.
        keys = redis.Redis.from_url(stack.redis.url).dbsize()
        drained = await asyncio.to_thread(wait_for_jobs, stack, timeout=60)
        writes = audit_writes(stack, load)
        jobs = audit_jobs(stack, load)
        return ScenarioReport(
            name="Redis killed and restarted under load",
            fault=(
                f"redis-server SIGKILLed at +{killed - t0:.1f} s, started again (empty) "
                f"{restarted - killed:.1f} s later; 2 server workers, 1 job worker"
            ),
            load_seconds=duration,
            outcomes=load.outcomes,
            windows=[FaultWindow("redis killed", killed, gone)],
            writes=writes,
            jobs=jobs,
            stale_reads=len(load.freshness.stale_reads()),
            recovery={
                "health says warn after the kill": seconds(health.first("warn", killed)),
                "health back to pass after the restart (for good)": seconds(
                    health.settled("pass", restarted)
                ),
                "last failed request after the kill": seconds(
                    last_failure_after(load.outcomes, killed)
                ),
                "latency before the kill": latency_ms(load.outcomes, t0, killed),
                "latency while Redis was down": latency_ms(load.outcomes, killed, restarted),
                "latency after the restart": latency_ms(load.outcomes, restarted, t0 + duration),
                "keys in the new Redis at the end": str(keys),
                "jobs drained after the load in": seconds(drained),
            },
            t0=t0,
        )


if __name__ == "__main__":
    from bench.chaos.__main__ import main

    main([NAME])
