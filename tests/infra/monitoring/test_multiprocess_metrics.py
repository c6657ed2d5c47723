"""`chainconsult serve --workers 2`: /metrics adds up the requests both workers served."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.slow
LIVEZ_200 = 'chainconsult_http_requests_total{method="GET",route="/livez",status="200"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def livez_count(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(LIVEZ_200):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def gauge_pids(metrics_text: str) -> set[str]:
    """The pids of the workers whose process gauges the metrics show."""
    return {
        line.split('pid="', 1)[1].split('"', 1)[0]
        for line in metrics_text.splitlines()
        if line.startswith("chainconsult_process_resident_memory_bytes{")
    }


def livez_count_in(counter_file: Path, scratch: Path) -> float:
    """What one worker's own counter file says, read with prometheus-client's collector."""
    scratch.mkdir()
    shutil.copy(counter_file, scratch / counter_file.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(scratch))
    return livez_count(generate_latest(registry).decode())


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    data_dir = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PROMETHEUS_MULTIPROC_DIR", "REDIS_URL"}
    }
    env.update(
        DATABASE_URL=database_url.replace("+psycopg", ""),
        CHAINCONSULT_DATA_DIR=str(data_dir),
        CHAINCONSULT_ENV="test",
        SECRET_KEY=TEST_SECRET,
        TRUSTED_IPS="127.0.0.1",
        LOG_LEVEL="WARNING",
        ALERT_EVALUATION_INTERVAL="0.5",
        DATABASE_MAX_CONNECTIONS="3",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "chainconsult", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("chainconsult serve --workers 2 did not become ready")
        time.sleep(0.2)
    try:
        yield base, data_dir
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def test_metrics_count_requests_served_by_both_workers(
    two_workers: tuple[str, Path], tmp_path: Path
) -> None:
    base, data_dir = two_workers
    requests = 300
    # No keep-alive: every request is a new connection, accepted by whichever worker is free.
    # A wait for a connection as long as the whole burst may take on a busy host.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        responses = await asyncio.gather(*(http.get("/livez") for _ in range(requests)))
        assert all(response.status_code == 200 for response in responses)
        # Until each worker's monitor has ticked (every 0.5 s) and sampled its gauges.
        deadline = time.monotonic() + 30
        while len(gauge_pids(metrics := (await http.get("/metrics")).text)) < 2:
            assert time.monotonic() < deadline, "a worker never reported its process gauges"
            await asyncio.sleep(0.1)

    assert livez_count(metrics) == requests
    metrics_dirs = list((data_dir / "metrics").iterdir())
    assert len(metrics_dirs) == 1
    counter_files = sorted(metrics_dirs[0].glob("counter_*.db"))
    per_worker = [
        livez_count_in(file, tmp_path / f"scratch-{index}")
        for index, file in enumerate(counter_files)
    ]
    served = [count for count in per_worker if count > 0]
    assert len(served) == 2, per_worker
    assert sum(served) == requests
    # Each live worker reports its own process gauges, labelled with its pid.
    assert len(gauge_pids(metrics)) == 2
