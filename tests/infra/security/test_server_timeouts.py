"""Slow clients at the real server (`chainconsult serve`): headers must arrive within
HTTP_HEADER_TIMEOUT, a whole body within HTTP_BODY_TIMEOUT of its first byte, idle keep-alive
connections close after HTTP_KEEP_ALIVE_TIMEOUT, and responses name the service, not the
server software (answers made before the app included)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.edge_support import ServerProcess, server_env

pytestmark = pytest.mark.slow

BODY_TIMEOUT = 2


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `chainconsult serve` with short limits for the module's slow clients."""
    tmp_path = tmp_path_factory.mktemp("timeouts")
    env = server_env(
        database_url,
        tmp_path,
        HTTP_HEADER_TIMEOUT=1,
        HTTP_KEEP_ALIVE_TIMEOUT=1,
        HTTP_BODY_TIMEOUT=BODY_TIMEOUT,
        BLOCKED_IPS="127.0.0.2",
    )
    with ServerProcess(env, tmp_path / "server.log") as started:
        yield started


def _closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (reads until EOF), at most ``limit``."""
    started = time.monotonic()
    sock.settimeout(limit)
    while sock.recv(4096):
        pass
    return time.monotonic() - started


def test_slow_headers_idle_connections_and_server_header(server: ServerProcess) -> None:
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


def _trickle(port: int, path: str, body: bytes, every: float) -> tuple[bytes, float]:
    """POST ``body`` to ``path`` one byte every ``every`` seconds until the server answers or
    hangs up; the answer and the seconds from the first body byte to the server's hang-up."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = b""
        sock.settimeout(every)
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
        return answer, time.monotonic() - started


def _parse(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        # Repeated fields joined, as HTTP allows: a second Server header would show.
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize("path", ["/api/v2/auth/login", "/api/v1/projects"])
def test_body_trickled_past_the_body_timeout_gets_408_and_the_connection_closes(
    server: ServerProcess, path: str
) -> None:
    """A byte every 0.2 s of a 200-byte body would take 40 s: the server answers 408 about
    HTTP_BODY_TIMEOUT after the first byte and hangs up. /api/v1/projects is read by the v1
    layer itself (its body is converted), /api/v2/auth/login by the route."""
    body = json.dumps({"email": "slow@example.com", "password": "x" * 150}).encode()

    answer, seconds = _trickle(server.port, path, body, every=0.2)

    status, headers, problem = _parse(answer)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert problem["type"] == "https://chainconsult.dev/problems/request-timeout"
    assert problem["request_id"] == headers["x-request-id"]
    assert headers["api-version"] == path.split("/")[2].removeprefix("v")
    assert BODY_TIMEOUT <= seconds < BODY_TIMEOUT + 2


def test_body_sent_within_the_body_timeout_is_served(server: ServerProcess) -> None:
    body = json.dumps({"email": "slow@example.com", "password": "x" * 10}).encode()

    # 40 bytes at 0.02 s each: slow, but whole within the limit.
    answer, _ = _trickle(server.port, "/api/v2/auth/login", body, every=0.02)

    status, _, problem = _parse(answer)
    assert status == 401, problem


def test_blocked_address_is_refused_under_the_platform_server_header(
    server: ServerProcess,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            answer += chunk

    status, headers, problem = _parse(answer)
    assert status == 403
    assert headers["server"] == "chainconsult"
    assert problem["request_id"] == headers["x-request-id"]
