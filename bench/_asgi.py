"""One HTTP request to an ASGI app called directly (its callable awaited: no server, no
socket, no client library), for the benchmarks that measure the app's own CPU per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


async def asgi_status(
    app: Any,
    method: str,
    path: str,
    headers: Sequence[tuple[bytes, bytes]] = ((b"host", b"bench"),),
    *,
    client: tuple[str, int] = ("127.0.0.1", 40000),
) -> int:
    """Send ``method path`` (``path`` may carry a query string) with an empty body to
    ``app``; the response's status."""
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": list(headers),
        "client": client,
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status
