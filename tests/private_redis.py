"""A redis-server of the test's own, on a free port, that the test may kill, freeze and
restart: faults are never injected into a Redis that anyone else uses."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import missing_service

_NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    def __init__(self, binary: str) -> None:
        self._binary = binary
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", *_NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: connections reset, the port refuses."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(5)
        self._process = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung server)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
            self._process.kill()
            self._process.wait(5)
            self._process = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        missing_service("no redis-server binary on PATH for a private Redis")
        raise AssertionError("unreachable")
    server = PrivateRedis(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
