"""A job's outcome is recorded even when the connection it is recorded on was lost.

procrastinate's worker records how a job ended (``finish_job``: succeeded, failed, aborted;
``retry_job``: run it again later) with one statement, once. When that statement fails on a
lost connection (the server restarted, ``pg_terminate_backend``), the job stays ``doing``
under a worker that is still alive: its heartbeats keep stalled-job recovery away, and the
job is lost until that worker stops (seen in ``make chaos``, PostgreSQL connections
terminated). Here the outcome is recorded again, after the pool has dropped its dead
connections. A replay refused because the job is no longer ``doing`` means the first
attempt did commit before the connection went (or someone else settled the job): there is
nothing left to record.

procrastinate has no hook around its status updates, so this is its JobManager with those
two methods wrapped; everything else is procrastinate's own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import psycopg
import stamina
import structlog
from procrastinate import PsycopgConnector, exceptions, jobs, manager

from chainconsult.infra.db.faults import is_connection_loss

log = structlog.get_logger("chainconsult.jobs")

ATTEMPTS = 6
"""Attempts at recording one outcome, the first included."""
TIMEOUT_S = 30.0
"""Give up after this long (the job is then left to the operator, as before)."""
WAIT_INITIAL_S = 0.1
WAIT_MAX_S = 5.0

# What procrastinate's functions raise when the job is not (or no longer) in a state the
# update applies to: procrastinate_finish_job_v1, then procrastinate_retry_job_v2
# (tests/infra/jobs/test_procrastinate_internals.py holds them to the installed version).
NOT_SETTLEABLE = ("Job was not found or not in", "Job was not found or has an invalid status")


def connection_lost(exc: BaseException) -> bool:
    """procrastinate's wrapper around a psycopg error that means the connection is gone."""
    cause = exc.__cause__
    return (
        isinstance(exc, exceptions.ConnectorException)
        and cause is not None
        and is_connection_loss(cause)
    )


def _already_settled(exc: BaseException) -> bool:
    cause = exc.__cause__
    return (
        isinstance(exc, exceptions.ConnectorException)
        and isinstance(cause, psycopg.errors.RaiseException)
        and any(message in str(cause) for message in NOT_SETTLEABLE)
    )


class OutcomeRecordingJobManager(manager.JobManager):
    """procrastinate's JobManager, recording a job's outcome again after a lost connection."""

    async def finish_job_by_id_async(
        self, job_id: int, status: jobs.Status, delete_job: bool
    ) -> None:
        parent = super().finish_job_by_id_async
        await self._record("finish", job_id, lambda: parent(job_id, status, delete_job))

    async def retry_job_by_id_async(
        self,
        job_id: int,
        retry_at: dt.datetime,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        parent = super().retry_job_by_id_async
        await self._record(
            "retry",
            job_id,
            lambda: parent(job_id, retry_at, priority=priority, queue=queue, lock=lock),
        )

    async def _record(
        self, what: str, job_id: int, statement: Callable[[], Awaitable[None]]
    ) -> None:
        lost = False
        async for attempt in stamina.retry_context(
            on=connection_lost,
            attempts=ATTEMPTS,
            timeout=TIMEOUT_S,
            wait_initial=WAIT_INITIAL_S,
            wait_max=WAIT_MAX_S,
        ):
            with attempt:
                if lost:
                    # The pool may hold more connections the same fault broke (recently
                    # used ones are not pinged at checkout: worker.py): test them all.
                    await self._check_pool()
                try:
                    await statement()
                except Exception as exc:
                    if lost and _already_settled(exc):
                        log.info("job_outcome_already_recorded", job_id=job_id, update=what)
                        return
                    if connection_lost(exc):
                        lost = True
                        log.warning("job_outcome_connection_lost", job_id=job_id, update=what)
                    raise
        if lost:
            log.info("job_outcome_recorded_again", job_id=job_id, update=what)

    async def _check_pool(self) -> None:
        if not isinstance(self.connector, PsycopgConnector):
            return
        try:
            pool = self.connector.pool
        except exceptions.AppNotOpen:
            return
        await pool.check()
