"""An ASGI app that imports nothing and refuses every request with 401: what the callgrind
self-test of bench/instructions.py counts, so that the run is seconds, not the minutes the
real app's imports take under callgrind."""

from __future__ import annotations

from typing import Any


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 401, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def create_app() -> Any:
    return _app
