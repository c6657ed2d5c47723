"""`chainconsult serve` holds as many client connections per worker as its open-file limit
allows (commands/serve.py, connections_per_worker), not granian's default of its listen
backlog (2,048) divided by the workers: past that, connections wait unanswered in the listen
queue."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

import pytest

from tests.edge_support import StartServers, server_env

pytestmark = pytest.mark.slow

CONNECTIONS = 2_300
"""More than granian's default allows one worker (2,048)."""


async def _answered(port: int, writers: list[asyncio.StreamWriter]) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writers.append(writer)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (TimeoutError, asyncio.IncompleteReadError):
        return False
    return head.startswith(b"HTTP/1.1 200")


async def test_one_worker_holds_more_connections_than_granians_default(
    servers: StartServers, database_url: str, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Each process (this client, the server it starts with this limit) holds one end of every
    # connection, plus its own files.
    needed = CONNECTIONS + 700
    if soft < needed:
        assert hard == resource.RLIM_INFINITY or hard >= needed, "open-file limit too low"
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        # Idle connections stay open for the whole test (they would otherwise close after 5 s
        # and make room for the ones waiting).
        env = server_env(
            database_url,
            tmp_path,
            REDIS_URL=None,
            HTTP_KEEP_ALIVE_TIMEOUT=60,
            HTTP_HEADER_TIMEOUT=60,
        )
        (server,) = servers(env, 1)
        writers: list[asyncio.StreamWriter] = []
        try:
            # All open at once: each holds its connection until every one has its answer.
            answers = await asyncio.gather(
                *(_answered(server.port, writers) for _ in range(CONNECTIONS))
            )
        finally:
            for writer in writers:
                writer.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert answers.count(True) == CONNECTIONS
