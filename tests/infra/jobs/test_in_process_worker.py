"""Embedded mode: with CHAINCONSULT_IN_PROCESS_WORKER=1 the API process runs the jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chainconsult.app import create_app
from tests.conftest import make_settings
from tests.helpers import register, serving
from tests.infra.jobs.conftest import FAST_JOBS, query
from tests.smtp import SmtpSink


async def test_the_api_process_runs_jobs_and_stops_its_worker_on_shutdown(
    database_url: str, tmp_path: Path
) -> None:
    sink = SmtpSink().start()
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
    app = create_app(settings)
    try:
        async with serving(app) as http:
            await register(http, email="embedded@example.com", name="Emb")
            [mail] = await _in_thread(sink.wait_for, 1)
            workers = query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")
    finally:
        sink.stop()

    assert mail.recipients == ["embedded@example.com"]
    assert mail.message["Subject"] == "Welcome to chainconsult, Emb"
    assert workers == [{"n": 1}]
    assert query(database_url, "SELECT count(*) AS n FROM procrastinate_workers") == [{"n": 0}]


async def test_the_in_process_worker_runs_jobs_again_after_the_database_cut_it_off(
    database_url: str, tmp_path: Path
) -> None:
    """A database outage (or a restart of the embedded server) stops procrastinate's worker;
    the API process is its supervisor and starts it again."""
    sink = SmtpSink().start()
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
    try:
        async with serving(create_app(settings)) as http:
            await _until(lambda: _workers(database_url) == 1)
            # What the server does to its sessions when it shuts down or crashes.
            query(
                database_url,
                "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity "
                "WHERE application_name = 'chainconsult-worker' "
                "AND datname = current_database()",
            )
            await register(http, email="after@example.com", name="After")
            [mail] = await _in_thread(sink.wait_for, 1, 20)
    finally:
        sink.stop()

    assert mail.recipients == ["after@example.com"]


def _workers(database_url: str) -> int:
    [row] = query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")
    return int(row["n"])


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _in_thread(function: object, *args: object) -> object:
    import asyncio

    return await asyncio.to_thread(function, *args)  # type: ignore[arg-type]
