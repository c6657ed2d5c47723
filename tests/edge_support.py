"""What the edge-protection tests share: an in-process client on an app built from given
settings, real `chainconsult serve` processes on free ports, a private redis-server that a
test may kill, and a parser for the RateLimit fields."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_sf import parse

from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.conftest import TEST_SECRET, missing_service
from tests.helpers import serving


@asynccontextmanager
async def app_client(
    settings: Settings, *, client_ip: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with serving(app, client=(client_ip, 50000)) as http:
        yield http


@dataclass(frozen=True)
class Quota:
    name: str
    params: dict[str, Any]


def rate_fields(response: httpx.Response, field: str) -> list[Quota]:
    """``RateLimit`` or ``RateLimit-Policy`` parsed as an RFC 9651 List by http-sf; raises
    if the header is not a valid Structured Field."""
    raw = response.headers[field]
    items = parse(raw.encode(), tltype="list")
    return [Quota(name=str(value), params=dict(params)) for value, params in items]


def quota_named(response: httpx.Response, field: str, name: str) -> dict[str, Any]:
    for quota in rate_fields(response, field):
        if quota.name == name:
            return quota.params
    raise AssertionError(f"no {name!r} in {field}: {response.headers.get(field)!r}")


LIMITED = "/api/v2/experts"
"""A cheap public GET that the rate limit counts (health probes are exempt)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class PrivateRedis:
    """A redis-server of this test alone, on its own port: the one a test may kill. The
    machine's shared Redis is never touched."""

    def __init__(self, tmp_path: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing_service("redis-server binary not on PATH")
        self.binary = str(binary)
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)
            self.process = None


class ServerProcess:
    """`chainconsult serve` in a subprocess, as an operator runs it."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chainconsult", "serve", "--port", str(self.port)],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # granian binds the socket before its workers start the app, and a connection made
        # meanwhile waits in the listen queue until a worker accepts it: an open port is
        # enough to start sending. (An HTTP probe would spend part of the rate limit under
        # test.)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def server_env(database_url: str, tmp_path: Path, **env: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "CHAINCONSULT_ENV": "test",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "DATABASE_MAX_CONNECTIONS": 3,
        "LOG_LEVEL": "WARNING",
        # As tests/conftest.py's settings: scenarios post right after registering.
        "REQUIRE_VERIFIED_EMAIL": "false",
        # Each test its own keys, even on a Redis that other runs share.
        "REDIS_KEY_PREFIX": f"cctest-{uuid.uuid4().hex[:10]}",
    }
    values.update(env)
    return {key: str(value) for key, value in values.items() if value is not None}


StartServers = Callable[[Mapping[str, str], int], list[ServerProcess]]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[StartServers]:
    """Start `chainconsult serve` processes with ``servers(env, count)``; all are stopped
    after the test."""
    started: list[ServerProcess] = []

    def start(env: Mapping[str, str], count: int = 1) -> list[ServerProcess]:
        batch = [
            ServerProcess(env, tmp_path / f"server-{len(started) + i}.log") for i in range(count)
        ]
        for server in batch:
            started.append(server)
            server.start()
        return batch

    yield start
    for server in started:
        server.stop()
