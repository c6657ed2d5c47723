"""Slow clients at the real server (`chainconsult serve`): headers must arrive within
HTTP_HEADER_TIMEOUT, idle keep-alive connections close after HTTP_KEEP_ALIVE_TIMEOUT, and
responses name the service, not the server software."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.edge_support import StartServers, server_env

pytestmark = pytest.mark.slow


def _closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (reads until EOF), at most ``limit``."""
    started = time.monotonic()
    sock.settimeout(limit)
    while sock.recv(4096):
        pass
    return time.monotonic() - started


def test_slow_headers_idle_connections_and_server_header(
    servers: StartServers, database_url: str, tmp_path: Path
) -> None:
    (server,) = servers(
        server_env(database_url, tmp_path, HTTP_HEADER_TIMEOUT=1, HTTP_KEEP_ALIVE_TIMEOUT=1), 1
    )

    with socket.create_connection(("127.0.0.1", server.port)) as silent:
        assert _closed_after(silent, 5) < 2.5

    with socket.create_connection(("127.0.0.1", server.port)) as slowloris:
        slowloris.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        # Drip a header line every 0.3 s: never complete, always busy.
        try:
            for index in range(20):
                slowloris.sendall(f"X-Drip-{index}: y\r\n".encode())
                time.sleep(0.3)
        except OSError:
            pass
        assert time.monotonic() - started < 2.5

    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        idle.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        response = b""
        while b"\r\n\r\n" not in response:
            response += idle.recv(4096)
        assert response.startswith(b"HTTP/1.1 200")
        assert _closed_after(idle, 5) < 2.5

    answer = httpx.get(f"{server.url}/livez")
    assert answer.status_code == 200
    assert answer.headers.get_list("server") == ["chainconsult"]
