"""SIGTERM on a real `chainconsult serve` process: it stops accepting, lets in-flight
requests finish within SHUTDOWN_GRACE_SECONDS, closes its pool and exits 0."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import TEST_SECRET, _free_port
from tests.infra.db.conftest import libpq

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def server(
    database_url: str, tmp_path: Path, grace: int
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = _free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "REDIS_URL": "",
        "CHAINCONSULT_ENV": "test",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "DATABASE_MAX_CONNECTIONS": "5",
        "SHUTDOWN_GRACE_SECONDS": str(grace),
        "LOG_LEVEL": "INFO",
        # 100 requests and the in-flight polls come from one address.
        "RATE_LIMIT_ANONYMOUS": "100000/minute",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.infra.db.serve_with_probes",
                "serve",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.1)
        yield base, process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def wait_for_in_flight(base: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=base) as probe:
        deadline = time.monotonic() + 30
        while (await probe.get("/test/in-flight")).json()["in_flight"] < count:
            assert time.monotonic() < deadline, "requests did not all arrive"
            await asyncio.sleep(0.05)


def app_connections_since(database_url: str, since: dt.datetime) -> int:
    with psycopg.connect(libpq(database_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND application_name = 'chainconsult' AND backend_start >= %s",
            (make_url(database_url).database, since),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
async def test_sigterm_lets_100_in_flight_requests_finish_then_exits_0(
    database_url: str, tmp_path: Path
) -> None:
    started_at = dt.datetime.now(dt.UTC)
    with server(database_url, tmp_path, grace=15) as (base, process, log):
        limits = httpx.Limits(max_connections=150, max_keepalive_connections=150)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            # Each is held 4 s: on a busy host the 100 connections take a while to open, and
            # the first must still be in flight when the last arrives.
            requests = [
                asyncio.create_task(client.get("/test/slow-app", params={"seconds": 4}))
                for _ in range(100)
            ]
            await wait_for_in_flight(base, 100)
            # The pool holds an open connection, which the shutdown must close.
            assert (await client.get("/test/sleep", params={"seconds": 0})).status_code == 200
            assert app_connections_since(database_url, started_at) >= 1

            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # It stopped accepting: a new connection is refused while the 100 finish.
            with pytest.raises(httpx.ConnectError):
                await asyncio.to_thread(httpx.get, f"{base}/livez", timeout=2)

            responses = await asyncio.gather(*requests)
        exit_code = await asyncio.to_thread(process.wait, 30)
        elapsed = time.monotonic() - signalled

    assert [response.status_code for response in responses] == [200] * 100
    assert all(response.json() == {"value": 1} for response in responses)
    assert exit_code == 0
    assert elapsed < 15
    events = [
        json.loads(line).get("event") for line in log.read_text().splitlines() if line[:1] == "{"
    ]
    assert "stopped" in events  # the lifespan's shutdown ran: pools disposed
    assert app_connections_since(database_url, started_at) == 0


@pytest.mark.slow
async def test_requests_past_the_grace_period_are_cut_and_exit_is_still_0(
    database_url: str, tmp_path: Path
) -> None:
    with server(database_url, tmp_path, grace=1) as (base, process, _):
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            requests = [
                asyncio.create_task(client.get("/test/slow-app", params={"seconds": 20}))
                for _ in range(5)
            ]
            await wait_for_in_flight(base, 5)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(process.wait, 30)
            elapsed = time.monotonic() - signalled
            outcomes = await asyncio.gather(*requests, return_exceptions=True)

    assert exit_code == 0
    assert elapsed < 5
    assert all(not isinstance(o, httpx.Response) or o.status_code >= 500 for o in outcomes)
