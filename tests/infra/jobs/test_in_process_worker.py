"""Embedded mode: with CHAINCONSULT_IN_PROCESS_WORKER=1 the API process runs the jobs."""

from __future__ import annotations

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


async def _in_thread(function: object, *args: object) -> object:
    import asyncio

    return await asyncio.to_thread(function, *args)  # type: ignore[arg-type]
