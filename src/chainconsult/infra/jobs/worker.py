"""Running jobs: open the App on a pool built from settings, and run a worker, as its own
process (`chainconsult worker`) or inside the API process (embedded mode).

Stopping: SIGTERM/SIGINT (own process) or ``InProcessWorker.stop()`` make the worker take no
new job and wait up to JOB_SHUTDOWN_GRACE_SECONDS for running ones; jobs still running then
are aborted and, their tasks permitting, retried by another worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Generic
from weakref import WeakKeyDictionary

import structlog
from procrastinate import App
from procrastinate.periodic import PeriodicRegistry
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text

from chainconsult.infra.jobs.job_app import job_app, new_connector
from chainconsult.infra.jobs.observe import observe_job, refresh_queue_depth
from chainconsult.infra.jobs.resources import JobResources, SettingsT
from chainconsult.infra.settings.platform import PlatformSettings
from chainconsult.infra.tracing import traced_job

log = structlog.get_logger("chainconsult.jobs")

QUEUE_DEPTH_INTERVAL_S = 15.0
# Side connections of a worker besides one per running job: heartbeat, periodic deferrer,
# abort polling and the queue depth sampler (LISTEN uses its own connection).
_SIDE_CONNECTIONS = 4

Schedules = Callable[[App, SettingsT], None]
"""Registers the periodic tasks on the App (chainconsult.schedules.register_schedules)."""


SYNCHRONOUS_COMMIT = "off"
"""The queue's bookkeeping (fetched, finished, retried) need not wait for the WAL flush: a
PostgreSQL crash can forget its last few hundred ms, which only re-runs those jobs (they are
recovered like a dead worker's) and never loses one, because jobs are created in their
caller's own durable transaction. Measured: docs/decisions/0015-job-worker-connections.md."""
CHECK_AFTER_IDLE_SECONDS = 2.0
"""A pooled connection idle longer than this is checked before use (see below)."""


class _StaleConnectionCheck:
    """psycopg_pool's ``check`` pings a connection on every checkout, one extra round trip
    per query (about a third of a no-op job's database time). Connections back from work
    less than CHECK_AFTER_IDLE_SECONDS ago are trusted instead. One that died in that window
    fails its query as on any lost connection and the pool discards it: a failed outcome
    update is made again after the pool is checked (outcomes.py), a failed fetch or heartbeat
    stops the worker for its supervisor to restart and its running jobs to be recovered (what
    a database outage does with or without the ping)."""

    def __init__(self) -> None:
        self.returned_at: WeakKeyDictionary[AsyncConnection[Any], float] = WeakKeyDictionary()

    async def returned(self, connection: AsyncConnection[Any]) -> None:
        self.returned_at[connection] = time.monotonic()

    async def check(self, connection: AsyncConnection[Any]) -> None:
        idle = time.monotonic() - self.returned_at.get(connection, float("-inf"))
        if idle >= CHECK_AFTER_IDLE_SECONDS:
            await AsyncConnectionPool.check_connection(connection)


def _pool_checking_stale_connections(**pool_args: Any) -> AsyncConnectionPool[Any]:
    guard = _StaleConnectionCheck()
    pool_args.update(check=guard.check, reset=guard.returned)
    return AsyncConnectionPool(**pool_args)


async def _autocommit(connection: AsyncConnection[Any]) -> None:
    # One statement per call and nothing to roll back: autocommit spares a BEGIN and a
    # COMMIT round trip on every query. (Not a connect argument: procrastinate adds its own
    # autocommit=True when it opens the LISTEN connection, and the two would clash.)
    await connection.set_autocommit(True)


@asynccontextmanager
async def open_job_app(settings: PlatformSettings, *, max_connections: int) -> AsyncIterator[App]:
    """The App with a connection pool for this process, closed on exit."""
    connector = new_connector(
        conninfo=settings.database.libpq_url(),
        min_size=1,
        max_size=max_connections,
        timeout=settings.database.connection_timeout_ms / 1000,
        kwargs={
            "application_name": "chainconsult-worker",
            "options": f"-c synchronous_commit={SYNCHRONOUS_COMMIT}",
        },
        configure=_autocommit,
        pool_factory=_pool_checking_stale_connections,
        name="chainconsult-jobs",
    )
    with job_app.replace_connector(connector):
        async with job_app.open_async():
            yield job_app


def _install_schedules(settings: SettingsT, schedules: Schedules[SettingsT] | None) -> None:
    # Rebuilt on every start: the schedule depends on settings, and a process may run
    # several workers one after the other (tests, a restarted in-process worker).
    job_app.periodic_registry = PeriodicRegistry()  # type: ignore[no-untyped-call]
    if schedules is not None:
        schedules(job_app, settings)


async def _sample_queue_depth(app: App) -> None:
    while True:
        try:
            await refresh_queue_depth(app.connector)
        except Exception:
            log.warning("queue_depth_unavailable", exc_info=True)
        await asyncio.sleep(QUEUE_DEPTH_INTERVAL_S)


async def run_worker(
    resources: JobResources[SettingsT],
    *,
    concurrency: int | None = None,
    queues: Iterable[str] | None = None,
    schedules: Schedules[SettingsT] | None = None,
    wait: bool = True,
    install_signal_handlers: bool = True,
    name: str = "worker",
    **options: Any,
) -> None:
    """Run a worker until it is stopped (or, with ``wait=False``, until no job is due)."""
    settings = resources.settings
    concurrency = concurrency or settings.jobs.max_concurrent_jobs
    _install_schedules(settings, schedules)
    async with open_job_app(settings, max_connections=concurrency + _SIDE_CONNECTIONS) as app:
        sampler = asyncio.create_task(_sample_queue_depth(app), name="queue depth")
        try:
            log.info("worker_starting", concurrency=concurrency, queues=list(queues or []))
            if queues:
                options["queues"] = list(queues)
            await app.run_worker_async(
                name=name,
                concurrency=concurrency,
                wait=wait,
                install_signal_handlers=install_signal_handlers,
                shutdown_graceful_timeout=settings.jobs.shutdown_grace_seconds,
                fetch_job_polling_interval=settings.jobs.poll_interval_seconds,
                abort_job_polling_interval=max(settings.jobs.poll_interval_seconds, 1.0),
                update_heartbeat_interval=settings.jobs.heartbeat_seconds,
                stalled_worker_timeout=settings.jobs.stalled_after_seconds,
                additional_context=resources.as_context(),
                worker_middleware=[traced_job, observe_job],
                **options,
            )
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            log.info("worker_stopped")


FIRST_RESTART_S = 1.0
MAX_RESTART_S = 30.0
STEADY_RUN_S = 60.0
"""A worker that ran this long before it stopped counts as healthy: its restart comes soon."""
PROBE_INTERVAL_S = 1.0
"""How often a backing-off restart asks whether the database is back."""
PROBE_TIMEOUT_S = 2.0
"""How long one such probe may take: a connection that hangs counts as the database away."""


class InProcessWorker(Generic[SettingsT]):
    """A worker running as a task of the API's event loop (embedded mode, --with-worker).

    A lost database connection stops procrastinate's worker (its fetch, heartbeat or LISTEN
    fails), which a `chainconsult worker` leaves to its process supervisor. Here the API process
    is that supervisor: it starts the worker again, after 1 s, then up to 30 s between tries
    while the database stays away, and at once when the database answers again; the jobs the
    stopped worker held are recovered as stalled."""

    def __init__(
        self, resources: JobResources[SettingsT], *, schedules: Schedules[SettingsT] | None
    ) -> None:
        self._resources = resources
        self._schedules = schedules
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._database_away = False
        """A back-off found the database away, and none has seen it answer since."""

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="in-process job worker")
        self._task.add_done_callback(_report_crash)

    async def _run(self) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await run_worker(
                    self._resources,
                    schedules=self._schedules,
                    # The server owns the signals; it stops us from its lifespan.
                    install_signal_handlers=False,
                    name="in-process-worker",
                )
                return
            except Exception:
                task = asyncio.current_task()
                if self._stopping or (task is not None and task.cancelling()):
                    # It failed on its way out (stopped, or cancelled with the event loop):
                    # restarting it would keep the loop from ever closing.
                    log.warning("in_process_worker_failed_stopping", exc_info=True)
                    return
                log.error("in_process_worker_crashed", exc_info=True)
            steady = time.monotonic() - started >= STEADY_RUN_S
            failures = 1 if steady else failures + 1
            delay = min(MAX_RESTART_S, FIRST_RESTART_S * 2.0 ** (failures - 1))
            log.warning("in_process_worker_restarting", in_s=delay)
            if await self._back_off(delay):
                failures = 0  # an outage ended: a failure after it starts a new back-off

    async def _back_off(self, delay: float) -> bool:
        """Wait ``delay`` seconds, or less: once the database, found away during this wait or
        an earlier one, answers again, the worker starts at once (True). An outage's end need
        not wait out a back-off of up to MAX_RESTART_S, also when it ended between two
        back-offs; a worker failing with the database up still backs off."""
        deadline = time.monotonic() + delay
        while True:
            if not await self._database_answers():
                self._database_away = True
            elif self._database_away:
                self._database_away = False
                log.info("in_process_worker_database_back")
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(PROBE_INTERVAL_S, left))

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S), self._resources.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
        except Exception:  # any failure means "not yet": the probe only shortens the wait
            return False
        return True

    async def stop(self) -> None:
        """Take no new job; wait for running ones up to the grace period."""
        if self._task is None:
            return
        self._stopping = True
        # procrastinate turns a cancellation of run_worker_async into its graceful stop.
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


def _report_crash(task: asyncio.Task[None]) -> None:
    # Nothing awaits the worker until shutdown: without this a crash would go unnoticed.
    if not task.cancelled() and task.exception() is not None:
        log.error("in_process_worker_crashed", exc_info=task.exception())
