"""Embedded mode: with CHAINCONSULT_IN_PROCESS_WORKER=1 the API process runs the jobs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from procrastinate.exceptions import ConnectorException
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from chainconsult.app import create_app
from chainconsult.infra.jobs import worker as job_worker
from chainconsult.infra.jobs.resources import JobResources
from tests.conftest import make_settings
from tests.helpers import register, serving
from tests.infra.jobs.conftest import FAST_JOBS, query
from tests.smtp import SmtpSink


async def test_the_api_process_runs_jobs_and_stops_its_worker_on_shutdown(
    database_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        CHAINCONSULT_IN_PROCESS_WORKER="1",
        EMAIL_SERVICE="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="none",
        **FAST_JOBS,
    )
    async with serving(create_app(settings)) as http:
        await register(http, email="embedded@example.com", name="Emb")
        # Registration mails a welcome and an address confirmation.
        mails = await _in_thread(sink.wait_for, 2)
        [mail] = [m for m in mails if str(m.message["Subject"]).startswith("Welcome")]
        workers = query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")

    assert mail.recipients == ["embedded@example.com"]
    assert mail.message["Subject"] == "Welcome to chainconsult, Emb"
    assert workers == [{"n": 1}]
    assert query(database_url, "SELECT count(*) AS n FROM procrastinate_workers") == [{"n": 0}]


async def test_the_in_process_worker_runs_jobs_again_after_the_database_cut_it_off(
    database_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    """A database outage (or a restart of the embedded server) stops procrastinate's worker;
    the API process is its supervisor and starts it again."""
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        CHAINCONSULT_IN_PROCESS_WORKER="1",
        EMAIL_SERVICE="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="none",
        **FAST_JOBS,
    )
    async with serving(create_app(settings)) as http:
        await _until(lambda: _listening(database_url))
        # What the server does to its sessions when it shuts down or crashes: the
        # worker's LISTEN fails and procrastinate stops the worker.
        query(
            database_url,
            "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity "
            "WHERE application_name = 'chainconsult-worker' "
            "AND datname = current_database()",
        )
        await register(http, email="after@example.com", name="After")
        mails = await _in_thread(sink.wait_for, 2, 30)

    # The welcome and the address confirmation, once each.
    assert [mail.recipients for mail in mails] == [["after@example.com"]] * 2  # type: ignore[attr-defined]


async def test_a_worker_failing_on_its_way_out_is_not_started_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A graceful stop during a database outage fails; restarting the worker then would keep
    the lifespan (and `serve`'s shutdown) waiting for ever. A stand-in worker fails so on
    demand, as the real one does only when the database goes away at that very moment."""
    runs = 0

    async def fails_when_stopped(*_: object, **__: object) -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            return  # started again: the test sees it in the count
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ConnectorException("the database went away during the graceful stop") from None

    monkeypatch.setattr(job_worker, "run_worker", fails_when_stopped)
    worker = job_worker.InProcessWorker(None, schedules=None)  # type: ignore[arg-type]
    worker.start()
    await asyncio.sleep(0)

    await asyncio.wait_for(worker.stop(), timeout=10)

    assert runs == 1


async def test_a_backing_off_worker_starts_at_once_when_the_database_answers_again(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """After a long outage the back-off between tries reaches MAX_RESTART_S; the worker must
    not keep the queue waiting that long once the database is back. The outage is a database
    that does not exist yet (a real server refusing the connection); a stand-in worker fails
    until it does, as procrastinate's fails to connect."""
    name = f"cc_back_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(make_url(database_url).set(database=name))
    starts: list[float] = []
    failures = 0

    async def needs_the_database(*_: object, **__: object) -> None:
        nonlocal failures
        starts.append(time.monotonic())
        try:
            connection = await engine.connect()
        except Exception:
            failures += 1
            raise
        try:
            await asyncio.Event().wait()  # runs until stopped
        finally:
            await connection.close()

    # The first failure already backs off 20 s, as a long outage's later ones do.
    monkeypatch.setattr(job_worker, "FIRST_RESTART_S", 20.0)
    monkeypatch.setattr(job_worker, "run_worker", needs_the_database)
    resources = JobResources(settings=None, sessionmaker=async_sessionmaker(engine))
    worker = job_worker.InProcessWorker(resources, schedules=None)
    worker.start()
    try:
        await _until(lambda: failures == 1)
        await asyncio.sleep(1)  # the back-off has found the database away
        query(database_url, f'CREATE DATABASE "{name}"')
        back = time.monotonic()
        await _until(lambda: len(starts) == 2, timeout=job_worker.PROBE_INTERVAL_S + 5)
        assert starts[1] - back < job_worker.PROBE_INTERVAL_S + 5
        await asyncio.sleep(0.5)
        assert (len(starts), failures) == (2, 1)  # it runs: no more tries
    finally:
        await asyncio.wait_for(worker.stop(), timeout=10)
        await engine.dispose()
        query(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_an_outage_that_ended_between_two_back_offs_ends_the_next_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One back-off sees the database away to its end; the restart fails and the outage ends
    meanwhile: the next back-off, up to MAX_RESTART_S long, must not be waited out."""
    answers = False

    async def database_answers() -> bool:
        return answers

    resources = JobResources(settings=None, sessionmaker=None)  # type: ignore[arg-type]
    worker = job_worker.InProcessWorker(resources, schedules=None)
    monkeypatch.setattr(worker, "_database_answers", database_answers)

    assert await worker._back_off(0.05) is False  # away throughout
    answers = True
    started = time.monotonic()
    back = await asyncio.wait_for(worker._back_off(job_worker.MAX_RESTART_S), timeout=5)

    assert back is True
    assert time.monotonic() - started < 1
    # The database up since: a worker that fails now backs off in full.
    assert await worker._back_off(0.05) is False


def _listening(database_url: str) -> bool:
    """The worker has opened its LISTEN connection (its last step before taking jobs)."""
    [row] = query(
        database_url,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = "
        "'chainconsult-worker' AND datname = current_database() AND starts_with(query, 'LISTEN')",
    )
    return int(row["n"]) > 0


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _in_thread(function: object, *args: object) -> object:
    return await asyncio.to_thread(function, *args)  # type: ignore[arg-type]
