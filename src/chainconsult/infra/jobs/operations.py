"""Inspecting and steering jobs, for `GET /api/v2/admin/jobs` and `chainconsult jobs`.

Reads go straight to procrastinate's tables with the caller's session; retry and cancel use
procrastinate's own SQL functions on that session's connection, so they commit with it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from procrastinate import sql as procrastinate_sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.db.writes import mark_written
from chainconsult.infra.jobs.job_app import job_app
from chainconsult.infra.jobs.queues import Queue
from chainconsult.infra.monitoring.metrics import jobs_queue_depth, jobs_total

STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")

_WHERE = {
    "todo": "is waiting to run",
    "doing": "is running",
    "succeeded": "has already succeeded",
    "failed": "has failed",
    "cancelled": "was cancelled",
    "aborted": "was aborted",
}
"""Each status as the middle of a sentence about a job, for the messages of retry and cancel."""


def _where(status: str) -> str:
    return _WHERE.get(status, f"is {status}")


class JobNotFound(LookupError):
    pass


class JobStateConflict(ValueError):
    """The job exists but is not in a state the operation applies to."""


@dataclass(frozen=True, slots=True)
class JobFailureNote:
    job_id: int
    task_name: str
    queue: str
    attempt: int
    will_retry: bool
    error: str
    failed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class QueueSummary:
    name: str
    counts: dict[str, int]
    oldest_waiting_seconds: float | None
    """Age of the longest-waiting job that is due (not scheduled for later); None if none."""


@dataclass(frozen=True, slots=True)
class JobsOverview:
    queues: list[QueueSummary]
    recent_failures: list[JobFailureNote] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    queue: str
    task_name: str
    status: str
    priority: int
    attempts: int
    scheduled_at: dt.datetime | None
    args: dict[str, Any]
    last_error: str | None


_COUNTS = text(
    "SELECT queue_name, status::text AS status, count(*) AS n FROM procrastinate_jobs "
    "GROUP BY queue_name, status"
)
# Waiting since it became due: its retry/scheduled time, else when it was deferred.
_OLDEST = text(
    """
    SELECT j.queue_name, EXTRACT(EPOCH FROM now() - min(COALESCE(j.scheduled_at, e.at)))
        AS age
    FROM procrastinate_jobs j
    JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
    WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
    GROUP BY j.queue_name
    """
)
_FAILURES = text(
    "SELECT job_id, task_name, queue, attempt, will_retry, error, created_at "
    "FROM job_failures ORDER BY created_at DESC, id DESC LIMIT :limit"
)
_LIST = text(
    """
    SELECT j.id, j.queue_name, j.task_name, j.status::text AS status, j.priority,
           j.attempts, j.scheduled_at, j.args,
           (SELECT f.error FROM job_failures f WHERE f.job_id = j.id
             ORDER BY f.id DESC LIMIT 1) AS last_error
    FROM procrastinate_jobs j
    WHERE (CAST(:status AS text) IS NULL OR j.status::text = :status)
      AND (CAST(:queue AS text) IS NULL OR j.queue_name = :queue)
      AND (CAST(:task AS text) IS NULL OR j.task_name = :task)
    ORDER BY j.id DESC
    LIMIT :limit
    """
)
# Locked, so the status a message names is still the job's when retry or cancel acts on it.
_STATUS = text("SELECT status::text, task_name FROM procrastinate_jobs WHERE id = :id FOR UPDATE")


async def overview(session: AsyncSession, *, failures: int = 20) -> JobsOverview:
    counts: dict[str, dict[str, int]] = {q.value: dict.fromkeys(STATUSES, 0) for q in Queue}
    for queue, status, n in (await session.execute(_COUNTS)).all():
        counts.setdefault(queue, dict.fromkeys(STATUSES, 0))
        if status in counts[queue]:
            counts[queue][status] = int(n)
    for queue, by_status in counts.items():
        jobs_queue_depth.labels(queue=queue).set(by_status["todo"])
    oldest = {queue: float(age) for queue, age in (await session.execute(_OLDEST)).all()}
    notes = [
        JobFailureNote(
            job_id=row.job_id,
            task_name=row.task_name,
            queue=row.queue,
            attempt=row.attempt,
            will_retry=row.will_retry,
            error=row.error,
            failed_at=row.created_at,
        )
        for row in (await session.execute(_FAILURES, {"limit": failures})).all()
    ]
    return JobsOverview(
        queues=[
            QueueSummary(name=name, counts=by_status, oldest_waiting_seconds=oldest.get(name))
            for name, by_status in counts.items()
        ],
        recent_failures=notes,
    )


async def list_jobs(
    session: AsyncSession,
    *,
    status: str | None = None,
    queue: str | None = None,
    task: str | None = None,
    limit: int = 50,
) -> list[JobRow]:
    rows = await session.execute(
        _LIST, {"status": status, "queue": queue, "task": task, "limit": limit}
    )
    return [
        JobRow(
            id=row.id,
            queue=row.queue_name,
            task_name=row.task_name,
            status=row.status,
            priority=row.priority,
            attempts=row.attempts,
            scheduled_at=row.scheduled_at,
            args=row.args,
            last_error=row.last_error,
        )
        for row in rows.all()
    ]


async def _status(session: AsyncSession, job_id: int) -> tuple[str, str]:
    row = (await session.execute(_STATUS, {"id": job_id})).one_or_none()
    if row is None:
        raise JobNotFound(f"there is no job {job_id}.")
    return str(row[0]), str(row[1])


async def _raw(session: AsyncSession) -> Any:
    connection = await session.connection()
    # Written on the raw connection, unseen by the session: a COMMIT lost now is a write's.
    mark_written(session)
    return (await connection.get_raw_connection()).driver_connection


async def retry_job(session: AsyncSession, job_id: int) -> None:
    """Queue a failed job again, to run now."""
    status, _ = await _status(session, job_id)
    if status != "failed":
        raise JobStateConflict(f"job {job_id} {_where(status)}; only a failed job can be retried.")
    await job_app.connector.execute_query_all_async_with_connection(
        await _raw(session),
        procrastinate_sql.queries["retry_job"],
        job_id=job_id,
        retry_at=dt.datetime.now(dt.UTC),
        new_priority=None,
        new_queue_name=None,
        new_lock=None,
    )


async def cancel_job(session: AsyncSession, job_id: int) -> str:
    """Cancel a waiting job, or ask the worker running it to abort; returns what happened, as
    a sentence."""
    status, task_name = await _status(session, job_id)
    if status not in {"todo", "doing"}:
        raise JobStateConflict(
            f"job {job_id} {_where(status)}; only a waiting or running job can be cancelled."
        )
    await job_app.connector.execute_query_all_async_with_connection(
        await _raw(session),
        procrastinate_sql.queries["cancel_job"],
        job_id=job_id,
        abort=True,
        delete_job=False,
    )
    if status == "todo":
        jobs_total.labels(task=task_name, status="cancelled").inc()
        return f"job {job_id} is cancelled; it will not run."
    return f"job {job_id} is running; its worker was asked to abort it."
