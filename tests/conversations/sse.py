"""A Server-Sent Events reader for the tests: real HTTP to a real server process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    id: int
    kind: str
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class EventStream:
    response: httpx.Response
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    comments: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server ended the stream."""

    async def read(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self._read()
        self.ended.set()

    async def _read(self) -> None:
        kind, data, event_id = "message", "", None
        async for line in self.response.aiter_lines():
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                self.connected.set()
            elif line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                assert event_id is not None
                await self.events.put(Event(event_id, kind, json.loads(data)))
                kind, data, event_id = "message", "", None

    async def next(self, timeout: float = 5.0) -> Event:
        return await asyncio.wait_for(self.events.get(), timeout)


@contextlib.asynccontextmanager
async def event_stream(
    base_url: str, headers: dict[str, str], last_event_id: int | None = None
) -> AsyncIterator[EventStream]:
    extra = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None)) as http,
        http.stream("GET", "/api/v2/events", headers={**headers, **extra}) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = EventStream(response)
        reader = asyncio.create_task(stream.read())
        try:
            await asyncio.wait_for(stream.connected.wait(), 10)
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader
