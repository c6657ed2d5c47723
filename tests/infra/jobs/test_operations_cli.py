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
from tests.infra.jobs.conftest import drain, jobs
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

    assert await in_thread(run, "jobs", "retry", str(failed)) == (0, f"job {failed} queued again\n")
    code, again = await in_thread(run, "jobs", "retry", str(failed))
    assert code == 2
    assert f"job {failed} is todo; only failed jobs can be retried" in again

    assert await in_thread(run, "jobs", "cancel", str(waiting)) == (
        0,
        f"job {waiting}: cancelled\n",
    )
    statuses = {row["id"]: row["status"] for row in jobs(database_url)}
    assert statuses == {failed: "todo", waiting: "cancelled"}

    code, missing = await in_thread(run, "jobs", "cancel", "999999")
    assert code == 2
    assert "no job 999999" in missing


def test_the_worker_refuses_an_unknown_queue(run: object) -> None:
    code, output = run("worker", "--queue", "urgent")  # type: ignore[operator]

    assert code == 2
    assert "--queue: 'urgent' is not one of critical, default, low" in output
