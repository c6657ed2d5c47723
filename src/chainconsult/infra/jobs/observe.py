"""What the worker reports about each job: the ``jobs_total`` counter, the text of every
failure (procrastinate records that a job failed, not why), a log line when a job fails for
good, and the ``jobs_queue_depth`` gauge."""

from __future__ import annotations

import asyncio
import traceback
from dataclasses import dataclass
from typing import Any, LiteralString

import structlog
from procrastinate import JobContext
from procrastinate.exceptions import JobAborted
from procrastinate.job_context import AbortReason
from procrastinate.worker import Worker

from chainconsult.infra.jobs.queues import Queue
from chainconsult.infra.jobs.resources import resources
from chainconsult.infra.monitoring.metrics import jobs_queue_depth, jobs_total

log = structlog.get_logger("chainconsult.jobs")

MAX_ERROR_CHARS = 4000

_RECORD_FAILURE: LiteralString = """
INSERT INTO job_failures (job_id, task_name, queue, attempt, will_retry, error)
VALUES (%(job_id)s, %(task_name)s, %(queue)s, %(attempt)s, %(will_retry)s, %(error)s)
"""
_QUEUE_DEPTH: LiteralString = """
SELECT queue_name, count(*) AS waiting FROM procrastinate_jobs
WHERE status = 'todo' GROUP BY queue_name
"""


@dataclass(frozen=True, slots=True)
class JobFailed:
    job_id: int
    task_name: str
    queue: str
    attempts: int
    error: str


def describe(exc: BaseException) -> str:
    """The exception as an operator wants to read it: type, message and where it came from."""
    text = "".join(traceback.format_exception(exc, limit=8))
    return text[-MAX_ERROR_CHARS:]


async def observe_job(call_next: Any, context: JobContext, worker: Worker) -> Any:
    """procrastinate worker middleware wrapped around every job the worker runs."""
    job = context.job
    try:
        result = await call_next()
    except BaseException as exc:
        aborted = isinstance(exc, JobAborted | asyncio.CancelledError)
        task = worker.app.tasks.get(job.task_name)
        # The question the worker asks next, asked the same way (procrastinate retries an
        # aborted job only when the abort came from a shutdown); Backoff gives the same
        # answer each time, only the length of the wait is random.
        retryable = not isinstance(exc, JobAborted) or (
            context.abort_reason() == AbortReason.SHUTDOWN
        )
        will_retry = (
            retryable and task is not None and task.get_retry_exception(exc, job) is not None
        )
        status = "retried" if will_retry else ("cancelled" if aborted else "failed")
        jobs_total.labels(task=job.task_name, status=status).inc()
        await _record_failure(context, worker, exc, will_retry=will_retry)
        if not will_retry and not aborted:
            await _failed_for_good(context, exc)
        raise
    jobs_total.labels(task=job.task_name, status="succeeded").inc()
    return result


async def _record_failure(
    context: JobContext, worker: Worker, exc: BaseException, *, will_retry: bool
) -> None:
    job = context.job
    try:
        await worker.app.connector.execute_query_async(
            _RECORD_FAILURE,
            job_id=job.id,
            task_name=job.task_name,
            queue=job.queue,
            attempt=job.attempts + 1,
            will_retry=will_retry,
            error=describe(exc),
        )
    except Exception:
        # The job's own outcome matters more than the note about it: never fail on this.
        log.exception("job_failure_not_recorded", job_id=job.id)


async def _failed_for_good(context: JobContext, exc: BaseException) -> None:
    job = context.job
    assert job.id is not None
    failed = JobFailed(
        job_id=job.id,
        task_name=job.task_name,
        queue=job.queue,
        attempts=job.attempts + 1,
        error=describe(exc),
    )
    log.error(
        "job_failed",
        job_id=failed.job_id,
        task=failed.task_name,
        queue=failed.queue,
        attempts=failed.attempts,
        error=f"{type(exc).__name__}: {exc}",
    )
    for hook in resources(context).on_final_failure:
        try:
            await hook(failed)
        except Exception:
            log.exception("job_failure_hook_failed", job_id=failed.job_id)


async def refresh_queue_depth(worker_app_connector: Any) -> dict[str, int]:
    """Set ``jobs_queue_depth{queue}`` from the database; returns the counts."""
    rows = await worker_app_connector.execute_query_all_async(_QUEUE_DEPTH)
    depth = {queue.value: 0 for queue in Queue}
    depth.update({row["queue_name"]: int(row["waiting"]) for row in rows})
    for queue, waiting in depth.items():
        jobs_queue_depth.labels(queue=queue).set(waiting)
    return depth
