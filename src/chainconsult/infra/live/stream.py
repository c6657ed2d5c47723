"""One open event stream and its response. Thousands of them wait idle in a worker at once, so
each is kept small: a list and a future rather than an asyncio.Queue (three deques, about
2.5 KB), and a plain ASGI response rather than Starlette's StreamingResponse (a task group, a
second task and an async generator for each stream on servers of ASGI spec 2.3, granian
among them). Measured in docs/decisions/0032-event-streams-without-connections.md."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MAX_PENDING = 256
"""Events waiting for a slow client; one more and it is closed (it replays from Last-Event-ID)."""
RECENT_SECONDS = 30.0
"""How far back each delivery looks: an event whose transaction committed late (after a
later event's) is still found. Delivered ids are remembered twice as long, so none repeats."""

Item = tuple[int, str, Any]
_BEAT: Item = (0, "", None)
_HEARTBEAT = b": heartbeat\n\n"
_PREAMBLE = b"retry: 2000\n: connected\n\n"


@dataclass(eq=False, slots=True)
class LiveStream:
    account_id: uuid.UUID
    floor: int
    """Events up to this id were there before the stream opened (or were replayed)."""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    credential: str = ""
    """The login token the stream was opened with; the hub re-checks it every heartbeat."""
    expires_at: float = math.inf
    """When that login expires (``time.time()`` seconds): the stream ends then."""
    pending: list[Item] = field(default_factory=list)
    waiter: asyncio.Future[None] | None = None
    """Set while the stream's response waits for something to send."""
    sent: dict[int, float] = field(default_factory=dict)
    opened: float = field(default_factory=time.monotonic)
    started: bool = False
    closed: bool = False

    def offer(self, event_id: int, kind: str, data: Any) -> None:
        if event_id <= self.floor or event_id in self.sent:
            return
        self.sent[event_id] = time.monotonic()
        if len(self.pending) >= MAX_PENDING:
            # A client this far behind reconnects and replays from its Last-Event-ID.
            self.close()
            return
        self._put((event_id, kind, data))

    def close(self) -> None:
        """End the stream now; what is still pending is replayed after the reconnect."""
        self.closed = True
        self._wake()

    def beat(self) -> None:
        """A heartbeat, unless something is already on its way."""
        if not self.pending:
            self._put(_BEAT)

    def forget_old(self, now: float) -> None:
        cutoff = now - 2 * RECENT_SECONDS
        for event_id in [key for key, at in self.sent.items() if at < cutoff]:
            del self.sent[event_id]

    def _put(self, item: Item) -> None:
        self.pending.append(item)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self) -> Item | None:
        """The next thing to send, or None once the stream is closed."""
        while not self.pending and not self.closed:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.closed:
            return None
        return self.pending.pop(0)


def frame(event_id: int, kind: str, data: Any) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, kind.encode(), orjson.dumps(data))


class EventStreamResponse(Response):
    """``text/event-stream``: the stream's events as they come, a comment line when idle,
    until the client goes away or the stream is closed; then ``on_end`` (the hub frees the
    stream's slot)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        stream: LiveStream,
        on_end: Callable[[LiveStream], Awaitable[None]],
        headers: Mapping[str, str],
    ) -> None:
        self.stream = stream
        self.on_end = on_end
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.stream
        stream.started = True
        # The client leaving is heard through receive() (an idle stream sends nothing to
        # fail for up to a heartbeat): one small task, where Starlette's response has two.
        watcher = asyncio.ensure_future(_close_on_disconnect(receive, stream))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            body = _PREAMBLE
            while True:
                await send({"type": "http.response.body", "body": body, "more_body": True})
                item = await stream.next()
                if item is None:
                    break
                body = _HEARTBEAT if item is _BEAT else frame(*item)
            if not watcher.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # ASGI 2.4: the client went away during a send
            pass
        finally:
            watcher.cancel()
            await self.on_end(stream)


async def _close_on_disconnect(receive: Receive, stream: LiveStream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.close()
