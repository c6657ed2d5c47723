"""Real worker processes: one SIGKILLed mid-job has its job finished by another within the
recovery period; SIGTERM lets the running job finish, takes no new one, and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import TEST_SECRET
from tests.edge_support import free_port
from tests.infra.jobs.conftest import jobs, query
from tests.notify import Queued, notify
from tests.smtp import SmtpSink

STALLED_AFTER = 2.0
RECOVERY_INTERVAL = 1

pytestmark = pytest.mark.slow


def start_worker(
    database_url: str, sink: SmtpSink, tmp_path: Path, name: str, *extra: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "EMAIL_SERVICE": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "SMTP_TLS": "none",
        "JOB_POLL_INTERVAL_SECONDS": "0.2",
        "JOB_HEARTBEAT_SECONDS": "0.5",
        "JOB_STALLED_AFTER_SECONDS": str(STALLED_AFTER),
        "JOB_RECOVERY_INTERVAL_SECONDS": str(RECOVERY_INTERVAL),
        "JOB_SHUTDOWN_GRACE_SECONDS": "20",
        "LOG_LEVEL": "INFO",
    }
    # The child keeps its own copy of the descriptor; ours can close at once.
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "chainconsult", "worker", "--concurrency", "1", *extra],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until(check: object, timeout: float, what: str) -> float:
    """Poll ``check()`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def status_of(database_url: str, job_id: int | None) -> str | None:
    return next((row["status"] for row in jobs(database_url) if row["id"] == job_id), None)


def workers_registered(database_url: str) -> int:
    return int(query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")[0]["n"])


async def queue_email(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, to: str
) -> Queued:
    return await notify(sessionmaker, database_url, to=to)


async def test_a_job_of_a_killed_worker_is_finished_by_another_within_the_recovery_period(
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    sink: SmtpSink,
    tmp_path: Path,
) -> None:
    queued = await queue_email(sessionmaker, database_url, "kill@example.com")
    job_id = queued.job_id
    sink.hold_rcpt.set()  # the first delivery attempt hangs mid-conversation
    doomed = start_worker(database_url, sink, tmp_path, "doomed")
    survivor = None
    try:
        wait_until(sink.holding.is_set, 60, "the first worker to start sending")
        assert status_of(database_url, job_id) == "doing"
        survivor = start_worker(database_url, sink, tmp_path, "survivor")
        wait_until(lambda: workers_registered(database_url) == 2, 60, "the second worker")

        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        sink.hold_rcpt.clear()
        took = wait_until(
            lambda: status_of(database_url, job_id) == "succeeded", 30, "the job to finish"
        )
    finally:
        doomed.kill()
        if survivor is not None:
            survivor.terminate()
            survivor.wait(30)

    # Presumed dead after STALLED_AFTER s without a heartbeat, re-queued by the next run of
    # the recovery task, then taken at once by the idle survivor.
    assert took < STALLED_AFTER + RECOVERY_INTERVAL + 3
    delivered = sink.messages_to("kill@example.com")
    assert len(delivered) == 1
    assert delivered[0].message["Subject"] == "Your expert application was approved"
    outcome = query(
        database_url,
        "SELECT status, attempts FROM email_deliveries WHERE idempotency_key = %(key)s",
        {"key": queued.key},
    )
    assert outcome == [{"status": "sent", "attempts": 2}]


async def test_sigterm_lets_the_running_job_finish_takes_no_new_one_and_exits_0(
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    sink: SmtpSink,
    tmp_path: Path,
) -> None:
    sink.data_delay = 2.0  # a slow mail server: the job is still running when SIGTERM comes
    running = (await queue_email(sessionmaker, database_url, "first@example.com")).job_id
    worker = start_worker(database_url, sink, tmp_path, "worker")
    try:
        wait_until(lambda: status_of(database_url, running) == "doing", 60, "the job to start")
        waiting = (await queue_email(sessionmaker, database_url, "second@example.com")).job_id
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(30)
    finally:
        worker.kill()

    assert exit_code == 0
    assert status_of(database_url, running) == "succeeded"
    assert [item.recipients for item in sink.received] == [["first@example.com"]]
    assert status_of(database_url, waiting) == "todo"
    assert workers_registered(database_url) == 0  # it unregistered on the way out


async def test_a_standalone_worker_serves_its_job_metrics_on_request(
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    sink: SmtpSink,
    tmp_path: Path,
) -> None:
    port = free_port()
    job_id = (await queue_email(sessionmaker, database_url, "metrics@example.com")).job_id
    worker = start_worker(database_url, sink, tmp_path, "worker", "--metrics-port", str(port))
    try:
        wait_until(lambda: status_of(database_url, job_id) == "succeeded", 60, "the job")
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        worker.terminate()
        worker.wait(30)

    sent = 'chainconsult_jobs_total{status="succeeded",task="notifications.send_email"} '
    assert [line for line in scraped.splitlines() if line.startswith(sent)] == [sent + "1.0"]
    assert "process_resident_memory_bytes" in scraped


def test_a_taken_metrics_port_stops_the_worker_with_one_clear_line(
    database_url: str, sink: SmtpSink, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker(database_url, sink, tmp_path, "worker", "--metrics-port", str(port))
        assert worker.wait(60) == 2
    log = (tmp_path / "worker.log").read_text()
    assert f"error: --metrics-port: cannot listen on 127.0.0.1:{port}" in log
    assert "Traceback" not in log
