"""The chaos load's client knows the local port of the connection each request went out on,
as the server sees it: what lets a report match a failed request to a killed worker."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from bench.chaos._load import TracedClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def peer_port(request: Request) -> PlainTextResponse:
    client = request.client
    return PlainTextResponse(str(client.port if client else ""))


async def test_the_port_recorded_is_the_one_the_server_saw() -> None:
    app = Starlette(routes=[Route("/", peer_port)])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with (
            TracedClient(base_url) as kept,
            TracedClient(base_url, keep_alive=False) as fresh,
        ):
            first = await kept.http.get("/")
            again = await kept.http.get("/")
            assert kept.port == int(first.text) == int(again.text)

            ports = []
            for _ in range(2):
                response = await fresh.http.get("/")
                ports.append((fresh.port, int(response.text)))
            assert all(mine == seen for mine, seen in ports)
            assert ports[0][0] != ports[1][0]  # a new connection each time
    finally:
        server.should_exit = True
        await serving
