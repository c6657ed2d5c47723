"""Retries: exponential backoff with jitter and a cap; permanent failures are not retried;
a job that exhausts its attempts is marked failed, recorded, counted and reported."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.jobs import Backoff, JobResources, defer
from chainconsult.infra.jobs.observe import JobFailed
from tests.infra.jobs import tasks
from tests.infra.jobs.conftest import eventually, jobs, query, running_worker
from tests.infra.jobs.tasks import flaky, refused


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    tasks.reset()
    yield
    tasks.reset()


def counted(task: str, status: str) -> float:
    value = REGISTRY.get_sample_value("chainconsult_jobs_total", {"task": task, "status": status})
    return value or 0.0


def test_backoff_delays_double_within_their_jitter_and_stop_at_the_cap() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=60, jitter=0.25)

    for attempts, nominal in [(0, 2), (1, 4), (2, 8), (3, 16), (4, 32)]:
        delays = [backoff.delay(attempts) for _ in range(200)]
        assert nominal * 0.75 <= min(delays) <= max(delays) <= nominal * 1.25
        assert max(delays) - min(delays) > nominal * 0.1  # jitter spreads them
    # From attempt 6 on even the lowest jitter (0.75 x 128 s) is past the cap.
    assert {backoff.delay(6 + n) for n in range(10)} == {60.0}
    assert backoff.delay(10_000) == 60.0


async def test_a_transient_failure_is_retried_with_growing_delays_until_it_succeeds(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    tasks.failures_left["t"] = 3
    retried_before = counted("tests.flaky", "retried")
    succeeded_before = counted("tests.flaky", "succeeded")
    async with sessionmaker() as session, session.begin():
        job_id = await defer(session, flaky, label="t")

    async with running_worker(job_resources, concurrency=2):
        await eventually(lambda: _status_is(database_url, job_id, "succeeded"))

    times = tasks.attempt_times["t"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 4
    # Nominal 0.4, 0.8, 1.6 s, each ±25 % (plus polling): every wait longer than the last.
    assert gaps[0] >= 0.3
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[2] <= 2.0 + 0.5
    notes = query(
        database_url,
        "SELECT attempt, will_retry, error FROM job_failures WHERE job_id = %(id)s ORDER BY id",
        {"id": job_id},
    )
    assert [(note["attempt"], note["will_retry"]) for note in notes] == [
        (1, True),
        (2, True),
        (3, True),
    ]
    assert "ConnectionError: upstream unavailable for t" in notes[0]["error"]
    assert counted("tests.flaky", "retried") - retried_before == 3
    assert counted("tests.flaky", "succeeded") - succeeded_before == 1


async def test_a_permanent_failure_is_not_retried_and_is_reported_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    reported: list[JobFailed] = []

    async def report(failed: JobFailed) -> None:
        reported.append(failed)

    resources = dataclasses.replace(job_resources, on_final_failure=(report,))
    failed_before = counted("tests.refused", "failed")
    async with sessionmaker() as session, session.begin():
        job_id = await defer(session, refused, label="nobody@invalid")

    async with running_worker(resources, concurrency=1):
        await eventually(lambda: _status_is(database_url, job_id, "failed"))

    assert len(tasks.attempt_times["nobody@invalid"]) == 1
    assert [(f.job_id, f.task_name, f.attempts) for f in reported] == [(job_id, "tests.refused", 1)]
    assert "recipient nobody@invalid does not exist" in reported[0].error
    note = query(
        database_url, "SELECT will_retry FROM job_failures WHERE job_id = %(id)s", {"id": job_id}
    )
    assert note == [{"will_retry": False}]
    assert counted("tests.refused", "failed") - failed_before == 1


async def test_a_job_that_exhausts_its_attempts_is_marked_failed(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    tasks.failures_left["always"] = 100
    async with sessionmaker() as session, session.begin():
        job_id = await defer(session, flaky, label="always")

    async with running_worker(job_resources, concurrency=1):
        await eventually(lambda: _status_is(database_url, job_id, "failed"), timeout=20)

    assert len(tasks.attempt_times["always"]) == 4  # the task's max_attempts
    row = next(row for row in jobs(database_url) if row["id"] == job_id)
    assert row["attempts"] == 4
    notes = query(
        database_url,
        "SELECT will_retry FROM job_failures WHERE job_id = %(id)s ORDER BY id",
        {"id": job_id},
    )
    assert [note["will_retry"] for note in notes] == [True, True, True, False]


async def _status_is(database_url: str, job_id: int | None, status: str) -> bool:
    return any(row["id"] == job_id and row["status"] == status for row in jobs(database_url))
