"""Chaos 3: a job worker SIGKILLed while it runs jobs (twice: each of the two workers once).

Jobs come from two sides: every registration queues a welcome email in its own transaction,
and the run itself queues welcome emails (the way registration does, with `defer` in the
transaction that creates the account). The SMTP sink is slow (each message
waits before RCPT is answered), so a worker always has emails mid-conversation when it dies.

Expected: the dead worker's running jobs are re-queued once its heartbeat is older than
JOB_STALLED_AFTER_SECONDS and finished by a live worker; the supervisor starts the killed
one again; every committed job succeeds; the killed conversations delivered nothing, so no
email arrives twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time

from bench.chaos._load import JobDeferrer, Load, prepare
from bench.chaos._report import ScenarioReport, audit_jobs, audit_writes, wait_for_jobs
from bench.chaos._stack import Stack, StackOptions, SupervisedWorker
from bench.chaos._watch import seconds

NAME = "jobs"
SMTP_DELAY_S = 0.5


def doing_jobs(stack: Stack) -> list[int]:
    return [
        row["id"] for row in stack.query("SELECT id FROM procrastinate_jobs WHERE status = 'doing'")
    ]


def kill(worker: SupervisedWorker) -> tuple[float, float]:
    """SIGKILL the worker's current process; returns (monotonic, wall) time of the kill."""
    pid = worker.pid
    assert pid is not None, f"{worker.name} is not running"
    moment, wall = time.monotonic(), time.time()
    os.kill(pid, signal.SIGKILL)
    return moment, wall


def recovered(stack: Stack, jobs: list[int], killed_at_wall: float) -> tuple[int, float | None]:
    """Of ``jobs`` (running at the kill), those started again after it, and the seconds from
    the kill until the last of them succeeded."""
    since = dt.datetime.fromtimestamp(killed_at_wall, dt.UTC)
    rows = stack.query(
        "SELECT e.job_id, max(s.at) AS done FROM procrastinate_events e"
        " LEFT JOIN procrastinate_events s ON s.job_id = e.job_id AND s.type = 'succeeded'"
        " WHERE e.job_id = ANY(%s) AND e.type = 'started' AND e.at > %s GROUP BY e.job_id",
        (jobs, since),
    )
    if not rows:
        return 0, None
    if any(row["done"] is None for row in rows):
        return len(rows), None
    return len(rows), max(row["done"] for row in rows).timestamp() - killed_at_wall


async def run(*, quick: bool = False) -> ScenarioReport:
    warmup, spacing, after = (4.0, 5.0, 4.0) if quick else (7.0, 7.0, 8.0)
    options = StackOptions(
        server_workers=2, job_workers=2, job_concurrency=10, smtp_rcpt_delay=SMTP_DELAY_S
    )
    with Stack(options) as stack:
        fixtures = prepare(stack)
        load = Load(stack.base_url, fixtures, readers=4, proposers=1, registrants=2)
        deferrer = JobDeferrer(stack.database_url)
        duration = warmup + spacing + after
        t0 = time.monotonic()
        traffic = asyncio.gather(load.run(duration), deferrer.run(t0 + duration))
        kills = []
        await asyncio.sleep(warmup)
        for worker in stack.workers:
            running = await asyncio.to_thread(doing_jobs, stack)
            moment, wall = kill(worker)
            kills.append((worker, moment, wall, running))
            await asyncio.sleep(spacing if worker is stack.workers[0] else 0)
        await traffic
        drained = await asyncio.to_thread(wait_for_jobs, stack, timeout=90)
        writes = audit_writes(stack, load)
        jobs = audit_jobs(stack, load, deferred_ids=deferrer.committed)
        recovery: dict[str, str] = {}
        for worker, moment, wall, running in kills:
            count, took = recovered(stack, running, wall)
            restart = next((s for s in worker.starts if s > moment), None)
            recovery[f"{worker.name} killed at +{moment - t0:.1f} s: jobs running anywhere"] = str(
                len(running)
            )
            recovery[f"{worker.name}: its jobs run again / all done after"] = (
                f"{count} / {seconds(took)}"
            )
            recovery[f"{worker.name}: restarted by the supervisor after"] = seconds(
                None if restart is None else restart - moment
            )
        recovery["jobs the run deferred itself (committed)"] = str(len(deferrer.committed))
        recovery["defers that failed (not acknowledged)"] = str(deferrer.failed)
        recovery["jobs drained after the load in"] = seconds(drained)
        return ScenarioReport(
            name="Job worker SIGKILLed while jobs run",
            fault=(
                f"SIGKILL to each of 2 job workers (concurrency 10) in turn, at +{warmup:.0f} s "
                f"and +{warmup + spacing:.0f} s; SMTP answers RCPT after {SMTP_DELAY_S} s; "
                "JOB_HEARTBEAT_SECONDS=1, JOB_STALLED_AFTER_SECONDS=3, "
                "JOB_RECOVERY_INTERVAL_SECONDS=1"
            ),
            load_seconds=duration,
            outcomes=load.outcomes,
            windows=[],
            writes=writes,
            jobs=jobs,
            stale_reads=len(load.freshness.stale_reads()),
            recovery=recovery,
            t0=t0,
        )


if __name__ == "__main__":
    from bench.chaos.__main__ import main

    main([NAME])
