"""A job's outcome is recorded even when the worker's connections were dropped while it ran:
without that, the job stays `doing` under a worker that is alive (its heartbeats keep
stalled-job recovery away) and is never finished."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.infra.jobs import defer
from chainconsult.infra.jobs.outcomes import OutcomeRecordingJobManager
from chainconsult.infra.jobs.worker import open_job_app
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings
from tests.infra.jobs import tasks
from tests.infra.jobs.conftest import FAST_JOBS, eventually, jobs, running_worker
from tests.infra.jobs.tasks import sever_worker_connections


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    tasks.reset()
    yield
    tasks.reset()


async def test_a_job_whose_worker_lost_its_connections_is_still_recorded_as_succeeded(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    # Heartbeats far apart: a heartbeat on a dropped connection would stop the worker (its
    # supervisor restarts it), which is not what this test is about.
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        **{**FAST_JOBS, "JOB_HEARTBEAT_SECONDS": "60", "JOB_STALLED_AFTER_SECONDS": "120"},
    )
    resources = worker_resources(settings, sessionmaker)
    async with sessionmaker() as session, session.begin():
        job_id = await defer(session, sever_worker_connections)

    with structlog.testing.capture_logs() as logs:
        async with running_worker(resources, concurrency=1):

            async def settled() -> bool:
                found = [job for job in jobs(database_url) if job["id"] == job_id]
                return found[0]["status"] == "succeeded"

            await eventually(settled, timeout=20)

    assert len(tasks.severed) == 1
    assert tasks.severed[0] >= 1, "the fault was not injected"
    events = [entry["event"] for entry in logs if entry.get("job_id") == job_id]
    assert "job_outcome_connection_lost" in events
    assert "job_outcome_recorded_again" in events


class _AnswerLost:
    """Fault injection: the first statement runs and commits on the real connector, then
    its answer is lost as on a dropped connection (the case where nobody knows whether the
    update happened)."""

    def __init__(self, connector: Any) -> None:
        self.connector = connector
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connector, name)

    async def execute_query_async(self, query: Any, **arguments: Any) -> None:
        await self.connector.execute_query_async(query, **arguments)
        if not self.lost:
            self.lost += 1
            try:
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            except psycopg.OperationalError as exc:
                raise ConnectorException() from exc


async def test_a_replayed_outcome_that_finds_the_job_settled_ends_quietly(
    job_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    async with sessionmaker() as session, session.begin():
        job_id = await defer(session, sever_worker_connections)

    async with open_job_app(job_settings, max_connections=2) as app:
        worker_id = await app.job_manager.register_worker()
        job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
        assert job is not None
        assert job.id == job_id
        faulty = _AnswerLost(app.job_manager.connector)
        manager = OutcomeRecordingJobManager(connector=faulty)  # type: ignore[arg-type]
        with structlog.testing.capture_logs() as logs:
            await manager.finish_job(job, status=Status.SUCCEEDED, delete_job=False)
        await app.job_manager.unregister_worker(worker_id)

    assert faulty.lost == 1
    assert [job["status"] for job in jobs(database_url) if job["id"] == job_id] == ["succeeded"]
    events = [entry["event"] for entry in logs if entry.get("job_id") == job_id]
    assert events == ["job_outcome_connection_lost", "job_outcome_already_recorded"]


async def test_a_replayed_retry_that_finds_the_job_queued_again_ends_quietly(
    job_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # procrastinate's retry function words its refusal differently from its finish function.
    async with sessionmaker() as session, session.begin():
        job_id = await defer(session, sever_worker_connections)

    async with open_job_app(job_settings, max_connections=2) as app:
        worker_id = await app.job_manager.register_worker()
        job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
        assert job is not None
        assert job.id == job_id
        faulty = _AnswerLost(app.job_manager.connector)
        manager = OutcomeRecordingJobManager(connector=faulty)  # type: ignore[arg-type]
        with structlog.testing.capture_logs() as logs:
            await manager.retry_job_by_id_async(job_id, retry_at=dt.datetime.now(dt.UTC))
        await app.job_manager.unregister_worker(worker_id)

    assert faulty.lost == 1
    assert [job["status"] for job in jobs(database_url) if job["id"] == job_id] == ["todo"]
    events = [entry["event"] for entry in logs if entry.get("job_id") == job_id]
    assert events == ["job_outcome_connection_lost", "job_outcome_already_recorded"]
