"""Queues and priorities: critical work jumps the queue."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.jobs import JobResources, defer
from tests.infra.jobs import tasks
from tests.infra.jobs.conftest import drain, jobs, libpq
from tests.infra.jobs.tasks import record, record_critical


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    tasks.reset()
    yield
    tasks.reset()


async def test_a_critical_job_deferred_behind_a_thousand_low_ones_starts_first(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    # Each low job in its own committed transaction, as a thousand requests would leave them.
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        conn.execute(
            "SELECT procrastinate_defer_jobs_v1(array_agg(ROW('low', 'tests.record', 0, NULL,"
            " NULL, jsonb_build_object('label', 'low-' || n), NULL)"
            "::procrastinate_job_to_defer_v1)) FROM generate_series(1, 1000) AS n"
        )
    async with sessionmaker() as session, session.begin():
        critical_id = await defer(session, record_critical, label="critical")

    await drain(job_resources, concurrency=1)

    assert len(tasks.started) == 1001
    assert tasks.started[0] == ("critical", critical_id)
    assert {row["status"] for row in jobs(database_url)} == {"succeeded"}


async def test_within_a_queue_jobs_start_in_the_order_they_were_deferred(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
) -> None:
    async with sessionmaker() as session, session.begin():
        for n in range(5):
            await defer(session, record, label=f"job-{n}")

    await drain(job_resources, concurrency=1)

    assert [label for label, _ in tasks.started] == [f"job-{n}" for n in range(5)]
