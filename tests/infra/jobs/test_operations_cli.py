"""`chainconsult jobs list|retry ID|cancel ID` and `chainconsult worker` argument checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from chainconsult.cli import cli
from chainconsult.infra.jobs import JobResources, defer
from tests.conftest import TEST_SECRET
from tests.infra.jobs.conftest import drain, jobs, query
from tests.infra.jobs.tasks import record, refused


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Iterator[object]:
    runner = CliRunner()
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
    }

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, list(args), env=env)
        return result.exit_code, result.output

    return invoke


async def in_thread(run: object, *args: str) -> tuple[int, str]:
    """The command runs its own event loop, which cannot nest in the test's."""
    return await asyncio.to_thread(run, *args)  # type: ignore[arg-type]


async def test_list_retry_and_cancel_jobs_from_the_command_line(
    run: object,
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    async with sessionmaker() as session, session.begin():
        failed = await defer(session, refused, label="ghost@example.com")
    await drain(job_resources)
    async with sessionmaker() as session, session.begin():
        waiting = await defer(session, record, label="later")
    code, listing = await in_thread(run, "jobs", "list", "--status", "failed")
    assert code == 0, listing
    [header, line] = listing.strip().splitlines()
    assert header.split()[:5] == ["ID", "QUEUE", "STATUS", "RUNS", "TASK"]
    assert line.split()[:5] == [str(failed), "default", "failed", "1", "tests.refused"]
    assert "PermanentJobError: recipient ghost@example.com does not" in line

    assert await in_thread(run, "jobs", "retry", str(failed)) == (
        0,
        f"job {failed} is queued again; the next free worker runs it.\n",
    )
    code, again = await in_thread(run, "jobs", "retry", str(failed))
    assert code == 2
    assert again == f"error: job {failed} is waiting to run; only a failed job can be retried.\n"

    assert await in_thread(run, "jobs", "cancel", str(waiting)) == (
        0,
        f"job {waiting} is cancelled; it will not run.\n",
    )
    statuses = {row["id"]: row["status"] for row in jobs(database_url)}
    assert statuses == {failed: "todo", waiting: "cancelled"}

    code, missing = await in_thread(run, "jobs", "cancel", "999999")
    assert code == 2
    assert missing == "error: there is no job 999999.\n"


async def test_cancel_and_retry_of_a_finished_job_say_why_in_whole_sentences(
    run: object,
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
) -> None:
    async with sessionmaker() as session, session.begin():
        done = await defer(session, record, label="done")
    await drain(job_resources)

    assert await in_thread(run, "jobs", "cancel", str(done)) == (
        2,
        f"error: job {done} has already succeeded; only a waiting or running job can be "
        "cancelled.\n",
    )
    assert await in_thread(run, "jobs", "retry", str(done)) == (
        2,
        f"error: job {done} has already succeeded; only a failed job can be retried.\n",
    )


async def test_cancelling_a_running_job_asks_its_worker_to_abort_it(
    run: object, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    async with sessionmaker() as session, session.begin():
        running = await defer(session, record, label="busy")
    # As a worker leaves a job it has taken; no worker runs here, so none finishes it first.
    query(
        database_url,
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %(id)s",
        {"id": running},
    )

    assert await in_thread(run, "jobs", "cancel", str(running)) == (
        0,
        f"job {running} is running; its worker was asked to abort it.\n",
    )
    [row] = query(
        database_url,
        "SELECT status::text, abort_requested FROM procrastinate_jobs WHERE id = %(id)s",
        {"id": running},
    )
    assert row == {"status": "doing", "abort_requested": True}


async def test_job_list_shows_the_whole_last_error_line(
    run: object,
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
) -> None:
    label = "a-recipient-with-a-very-long-address-" * 4 + "@example.com"
    async with sessionmaker() as session, session.begin():
        failed = await defer(session, refused, label=label)
    await drain(job_resources)

    code, listing = await in_thread(run, "jobs", "list", "--status", "failed")

    assert code == 0, listing
    [_, line] = listing.strip().splitlines()
    assert line.startswith(f"{failed:>8}  default")
    assert line.endswith(f"PermanentJobError: recipient {label} does not exist")


def test_job_list_says_when_no_job_matches_and_refuses_an_unknown_queue(run: object) -> None:
    assert run("jobs", "list", "--status", "aborted") == (0, "No job matches.\n")  # type: ignore[operator]
    code, output = run("jobs", "list", "--queue", "urgent")  # type: ignore[operator]
    assert code == 2
    assert output == "error: --queue: 'urgent' is not one of critical, default, low.\n"


def test_the_worker_refuses_an_unknown_queue(run: object) -> None:
    code, output = run("worker", "--queue", "urgent")  # type: ignore[operator]

    assert code == 2
    assert output == "error: --queue: 'urgent' is not one of critical, default, low.\n"
