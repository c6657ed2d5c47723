"""Tasks only the tests run; they record what happened in this process's memory."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from procrastinate import JobContext
from sqlalchemy import text

from chainconsult.infra.jobs import Backoff, PermanentJobError, Queue, resources, task

started: list[tuple[str, int | None]] = []
"""(label, job id) in the order jobs started."""
attempt_times: dict[str, list[float]] = defaultdict(list)
"""Monotonic start time of every attempt, by label."""
failures_left: dict[str, int] = {}
severed: list[int] = []
"""How many of the worker's connections each ``sever_worker_connections`` run terminated."""


def reset() -> None:
    severed.clear()
    started.clear()
    attempt_times.clear()
    failures_left.clear()


@task(name="tests.record", queue=Queue.low)
async def record(context: JobContext, *, label: str) -> None:
    started.append((label, context.job.id))


@task(name="tests.record_critical", queue=Queue.critical)
async def record_critical(context: JobContext, *, label: str) -> None:
    started.append((label, context.job.id))


@task(name="tests.flaky", queue=Queue.default, retry=Backoff(max_attempts=4, base_seconds=0.4))
async def flaky(context: JobContext, *, label: str) -> str:
    """Fails ``failures_left[label]`` times with a transient error, then succeeds."""
    attempt_times[label].append(time.monotonic())
    if failures_left.get(label, 0) > 0:
        failures_left[label] -= 1
        raise ConnectionError(f"upstream unavailable for {label}")
    return "ok"


@task(name="tests.refused", queue=Queue.default, retry=Backoff(max_attempts=5, base_seconds=0.1))
async def refused(context: JobContext, *, label: str) -> None:
    attempt_times[label].append(time.monotonic())
    raise PermanentJobError(f"recipient {label} does not exist")


@task(name="tests.slow", queue=Queue.default)
async def slow(context: JobContext, *, label: str, seconds: float) -> None:
    started.append((label, context.job.id))
    await asyncio.sleep(seconds)


@task(name="tests.sever_worker_connections", queue=Queue.default, retry=None)
async def sever_worker_connections(context: JobContext) -> None:
    """Terminates every connection of the worker's own pool (what a PostgreSQL restart or
    an operator's pg_terminate_backend does to it) while the job runs, so the worker
    records the job's outcome on a connection the server has dropped. Only on this test
    database: the workers of other sessions on the same server are not this test's."""
    async with resources(context).sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'chainconsult-worker' AND pid <> pg_backend_pid()"
                " AND datname = current_database()"
            )
        )
        severed.append(sum(1 for (done,) in rows if done))
