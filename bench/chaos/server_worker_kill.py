"""Chaos 4: one server worker SIGKILLed while the others serve (twice, a different worker
each time), as the kernel's OOM killer or a crash would.

`chainconsult serve --workers 3` shares one listening socket between its workers, and the
server process starts a new worker when one dies. Expected: only the requests the dead
worker was handling fail (the client sees the connection close with no answer); every other
request, including new connections made at that moment, is served by the other workers; no
acknowledged write is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil
from bench.chaos._load import Load, prepare
from bench.chaos._report import (
    FaultWindow,
    ScenarioReport,
    audit_jobs,
    audit_writes,
    last_failure_after,
    wait_for_jobs,
)
from bench.chaos._stack import ApiServer, Stack, StackOptions
from bench.chaos._watch import latency_ms, seconds

NAME = "server"
SERVER_WORKERS = 3


def kill_one(server: ApiServer, avoid: set[int]) -> tuple[int, float, float]:
    """SIGKILL one worker not in ``avoid``; returns (pid, kill time, time it was gone)."""
    pid = next(pid for pid in server.worker_pids() if pid not in avoid)
    moment = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.001)
    return pid, moment, time.monotonic()


def replaced(server: ApiServer, before: set[int], timeout: float = 30) -> float | None:
    """Seconds until the server runs a worker that was not there before the kill."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pids = set(server.worker_pids())
        if len(pids) >= server.workers and pids - before:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


async def run(*, quick: bool = False) -> ScenarioReport:
    warmup, spacing, after = (4.0, 5.0, 4.0) if quick else (8.0, 8.0, 8.0)
    with Stack(StackOptions(server_workers=SERVER_WORKERS, job_workers=1)) as stack:
        server = stack.server
        assert server is not None
        fixtures = prepare(stack)
        load = Load(stack.base_url, fixtures, readers=12)
        duration = warmup + spacing + after
        t0 = time.monotonic()
        traffic = asyncio.create_task(load.run(duration))
        windows: list[FaultWindow] = []
        recovery: dict[str, str] = {}
        killed: set[int] = set()
        await asyncio.sleep(warmup)
        for number in (1, 2):
            before = set(server.worker_pids())
            pid, moment, gone = await asyncio.to_thread(kill_one, server, killed)
            killed.add(pid)
            windows.append(FaultWindow(f"#{number} (pid {pid})", moment, gone))
            took = await asyncio.to_thread(replaced, server, before)
            recovery[f"kill #{number}: replacement worker started after"] = seconds(took)
            if number == 1:
                await asyncio.sleep(max(0.0, spacing - (time.monotonic() - moment)))
        await traffic
        for window in windows:
            recovery[f"kill {window.label}: last failed request after it"] = seconds(
                last_failure_after(load.outcomes, window.start)
            )
            recovery[f"kill {window.label}: latency in the 2 s after"] = latency_ms(
                load.outcomes, window.start, window.start + 2
            )
        recovery["latency before the first kill"] = latency_ms(load.outcomes, t0, windows[0].start)
        drained = await asyncio.to_thread(wait_for_jobs, stack, timeout=60)
        recovery["jobs drained after the load in"] = seconds(drained)
        return ScenarioReport(
            name="Server worker SIGKILLed while the others serve",
            fault=(
                f"SIGKILL to one of {SERVER_WORKERS} workers of `chainconsult serve` at "
                f"+{warmup:.0f} s and another at +{warmup + spacing:.0f} s"
            ),
            load_seconds=duration,
            outcomes=load.outcomes,
            windows=windows,
            writes=audit_writes(stack, load),
            jobs=audit_jobs(stack, load),
            stale_reads=len(load.freshness.stale_reads()),
            recovery=recovery,
            t0=t0,
        )


if __name__ == "__main__":
    from bench.chaos.__main__ import main

    main([NAME])
