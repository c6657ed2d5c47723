"""One event stream's response at the ASGI level, as a server of ASGI spec 2.3 (granian)
drives it: what it sends, that it ends when the client leaves or the stream is closed, and
what an idle stream costs: thousands wait in a worker at once
(docs/decisions/0032-event-streams-without-connections.md)."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import uuid
from typing import Any

from chainconsult.infra.live.stream import MAX_PENDING, EventStreamResponse, LiveStream

SCOPE: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "GET"}


class Client:
    """The server's side of one connection: what was sent, and a disconnect on demand."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def serve(stream: LiveStream, client: Client, ended: list[LiveStream]) -> None:
    async def on_end(finished: LiveStream) -> None:
        ended.append(finished)

    response = EventStreamResponse(stream, on_end, {"Cache-Control": "no-cache"})
    await response(SCOPE, client.receive, client.send)


async def test_events_and_heartbeats_are_sent_until_the_client_leaves() -> None:
    stream, client, ended = LiveStream(account_id=uuid.uuid4(), floor=10), Client(), []
    task = asyncio.create_task(serve(stream, client, ended))
    await asyncio.sleep(0.01)
    start = client.sent[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    stream.offer(9, "message", {"old": True})  # before the stream's floor: not sent
    stream.offer(11, "message", {"id": "a"})
    stream.offer(11, "message", {"id": "a"})  # delivered once
    await asyncio.sleep(0.01)
    stream.beat()
    await asyncio.sleep(0.01)
    assert client.body() == (
        b'retry: 2000\n: connected\n\nid: 11\nevent: message\ndata: {"id":"a"}\n\n: heartbeat\n\n'
    )
    client.gone.set()
    await asyncio.wait_for(task, 1)
    assert ended == [stream]


async def test_a_closed_stream_ends_its_response_and_a_slow_client_is_closed() -> None:
    stream, client, ended = LiveStream(account_id=uuid.uuid4(), floor=0), Client(), []
    for event_id in range(1, MAX_PENDING + 2):
        stream.offer(event_id, "read", {})
    assert stream.closed  # one more than a slow client may have waiting
    await asyncio.wait_for(serve(stream, client, ended), 1)
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert ended == [stream]


async def test_an_idle_stream_costs_one_task_beside_its_own_and_a_few_kilobytes() -> None:
    """Measured by this harness (the stream objects made beforehand): about 4 KB a stream;
    Starlette's StreamingResponse over an async generator and an asyncio.Queue, the design
    before, about 14 KB (a task group, its child task, the generator)."""
    count = 200
    clients = [Client() for _ in range(count)]
    streams = [LiveStream(account_id=uuid.uuid4(), floor=0) for _ in range(count)]
    ended: list[LiveStream] = []
    gc.collect()
    tracemalloc.start()
    try:
        before_tasks = len(asyncio.all_tasks())
        before = tracemalloc.take_snapshot()
        tasks = [
            asyncio.create_task(serve(stream, client, ended))
            for stream, client in zip(streams, clients, strict=True)
        ]
        await asyncio.sleep(0.05)
        gc.collect()
        after = tracemalloc.take_snapshot()
        extra_tasks = len(asyncio.all_tasks()) - before_tasks
    finally:
        tracemalloc.stop()
    per_stream = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / count
    assert extra_tasks == 2 * count  # the request's own task (here: serve) and the watcher
    assert per_stream < 6000, f"{per_stream:.0f} bytes a stream"
    for client in clients:
        client.gone.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert len(ended) == count
