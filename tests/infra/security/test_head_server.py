"""HEAD through the real server (uvicorn with its httptools protocol, as `serve` runs it): the
GET's status and headers, no body, no server error, and the keep-alive connection stays
usable. The in-process ASGI tests cannot see this: only the server checks that a response
body matches its Content-Length unless the request was a HEAD."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from tests.edge_support import StartServers, server_env


@pytest.mark.slow
def test_head_through_uvicorn_keeps_the_connection_and_logs_no_error(
    servers: StartServers, database_url: str, tmp_path: Path
) -> None:
    (server,) = servers(server_env(database_url, tmp_path), 1)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    paths = [
        "/livez",
        "/readyz",  # not /api/health: its uptime field makes two answers differ in length
        "/api/v2/experts",
        "/api/v2/experts",  # the second one is answered by the cached-read shortcut
        "/api/v1/experts?page=1&per_page=5",
    ]
    try:
        heads, gets = [], []
        for path in paths:
            connection.request("GET", path)
            got = connection.getresponse()
            gets.append((got.status, got.getheader("content-length"), got.read()))
            connection.request("HEAD", path)
            head = connection.getresponse()
            heads.append((head.status, head.getheader("content-length"), head.read()))
    finally:
        connection.close()

    for path, (status, length, body), (get_status, get_length, get_body) in zip(
        paths, heads, gets, strict=True
    ):
        assert status == get_status == 200, path
        assert body == b"", path
        assert length == get_length == str(len(get_body)), path
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert "unhandled_error" not in log
