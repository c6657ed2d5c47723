"""Chaos 2: every PostgreSQL connection of the platform terminated (pg_terminate_backend)
under load, three times, as a failover or an operator's mistake would.

Expected: requests that were using a connection at that moment fail with a 503 problem
(`database-unavailable`, or `commit-outcome-unknown` for a write caught in its COMMIT);
every later request gets a fresh connection (the pool pings before use); job workers that
lost their connections exit and are restarted, and their jobs run again; no acknowledged
write or job is lost."""

from __future__ import annotations

import asyncio
import time

from bench.chaos._load import Load, prepare
from bench.chaos._report import (
    FaultWindow,
    ScenarioReport,
    audit_jobs,
    audit_writes,
    first_success_after,
    last_failure_of,
    wait_for_jobs,
)
from bench.chaos._stack import APP_DATABASE, Stack, StackOptions
from bench.chaos._watch import latency_ms, seconds

NAME = "postgres"
WRITES = ("register", "propose", "freshness_write")


async def run(*, quick: bool = False) -> ScenarioReport:
    warmup, spacing, faults, after = (4.0, 4.0, 2, 5.0) if quick else (6.0, 6.0, 3, 8.0)
    with Stack(StackOptions(server_workers=2, job_workers=2)) as stack:
        fixtures = prepare(stack)
        load = Load(stack.base_url, fixtures)
        duration = warmup + spacing * (faults - 1) + after
        t0 = time.monotonic()
        traffic = asyncio.create_task(load.run(duration))
        windows: list[FaultWindow] = []
        terminated: list[int] = []
        await asyncio.sleep(warmup)
        for number in range(1, faults + 1):
            started = time.monotonic()
            count, took = await asyncio.to_thread(stack.postgres.terminate_backends, APP_DATABASE)
            windows.append(FaultWindow(f"#{number}", started, started + took))
            terminated.append(count)
            if number < faults:
                await asyncio.sleep(max(0.0, spacing - (time.monotonic() - started)))
        await traffic
        drained = await asyncio.to_thread(wait_for_jobs, stack, timeout=90)
        writes = audit_writes(stack, load)
        jobs = audit_jobs(stack, load)
        recovery = {}
        for window, count in zip(windows, terminated, strict=True):
            recovery[f"fault {window.label}: sessions terminated"] = str(count)
            recovery[f"fault {window.label}: first acknowledged write begun after it"] = seconds(
                first_success_after(load.outcomes, window.end, WRITES)
            )
            recovery[f"fault {window.label}: last failure of its requests"] = seconds(
                last_failure_of(load.outcomes, window)
            )
        recovery["job worker restarts (supervisor)"] = str(
            sum(worker.restarts for worker in stack.workers)
        )
        recovery["latency before the first fault"] = latency_ms(load.outcomes, t0, windows[0].start)
        recovery["latency in the 2 s after each fault"] = " ; ".join(
            latency_ms(load.outcomes, w.start, w.start + 2) for w in windows
        )
        recovery["jobs drained after the load in"] = seconds(drained)
        return ScenarioReport(
            name="PostgreSQL connections terminated under load",
            fault=(
                f"pg_terminate_backend on every session of the app database, {faults} times "
                f"{spacing:.0f} s apart from +{warmup:.0f} s; 2 server workers, 2 job workers"
            ),
            load_seconds=duration,
            outcomes=load.outcomes,
            windows=windows,
            writes=writes,
            jobs=jobs,
            stale_reads=len(load.freshness.stale_reads()),
            recovery=recovery,
            t0=t0,
        )


if __name__ == "__main__":
    from bench.chaos.__main__ import main

    main([NAME])
