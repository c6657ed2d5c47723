"""Real API server processes (uvicorn subprocesses) for tests that need more than one process:
cross-process cache invalidation, shared Redis state."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET

_UVICORN_ARGS = (
    "chainconsult.app:create_app",
    "--factory",
    "--host",
    "127.0.0.1",
    "--no-access-log",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def api_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """One `uvicorn chainconsult.app:create_app` process; yields its base URL."""
    port = _free_port()
    full_env = {
        **os.environ,
        "CHAINCONSULT_ENV": "test",
        "SECRET_KEY": TEST_SECRET,
        "LOG_LEVEL": "WARNING",
        "DATABASE_MAX_CONNECTIONS": "5",
        "REQUIRE_VERIFIED_EMAIL": "false",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", *_UVICORN_ARGS, "--port", str(port)],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in 60 s")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@contextmanager
def api_servers(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(api_server(env, log_dir / f"server-{index}.log"))
            for index in range(count)
        ]
