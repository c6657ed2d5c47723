"""Fixtures for job tests: a worker's resources on the test database, and a worker run in
this process until the queue is idle or a condition holds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.jobs import JobResources
from chainconsult.infra.jobs.worker import run_worker
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings

FAST_JOBS = {
    "JOB_POLL_INTERVAL_SECONDS": "0.05",
    "JOB_HEARTBEAT_SECONDS": "0.5",
    "JOB_STALLED_AFTER_SECONDS": "2",
    "JOB_SHUTDOWN_GRACE_SECONDS": "10",
}


@pytest.fixture
def job_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, REDIS_URL=None, **FAST_JOBS)


@pytest.fixture
async def sessionmaker(job_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(job_settings.database)
    yield build_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def job_resources(
    job_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> JobResources:
    return worker_resources(job_settings, sessionmaker)


async def drain(resources: JobResources, *, concurrency: int = 1, **options: Any) -> None:
    """Run a worker until no job is due."""
    await run_worker(
        resources, concurrency=concurrency, wait=False, install_signal_handlers=False, **options
    )


@contextlib.asynccontextmanager
async def running_worker(resources: JobResources, **options: Any) -> AsyncIterator[None]:
    """A waiting worker for the duration of the block, stopped gracefully at its end."""
    task = asyncio.create_task(run_worker(resources, install_signal_handlers=False, **options))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def libpq(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def jobs(database_url: str, task_name: str | None = None) -> list[dict[str, Any]]:
    with psycopg.connect(libpq(database_url), autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT id, queue_name, task_name, status::text AS status, attempts, priority,"
            " scheduled_at, args FROM procrastinate_jobs"
            " WHERE %(task)s::text IS NULL OR task_name = %(task)s ORDER BY id",
            {"task": task_name},
        ).fetchall()


def query(database_url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Run one statement on its own connection; the rows it returns, if any."""
    with psycopg.connect(libpq(database_url), autocommit=True, row_factory=dict_row) as conn:
        cursor = conn.execute(sql, params or {})  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description is not None else []
