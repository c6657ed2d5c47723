"""Automatic pipelining of the limiter's Redis commands across concurrent requests.

Every decision that is asked for in the same turn of the event loop goes out in one pipeline:
one write and one read on one connection for all of them, where each request used to make its
own round trip (with its own system calls, which on a busy 2-core host cost more CPU than the
whole rest of the edge stack: bench/RESULTS.md, "Hot path (issue 10)"). This is what ioredis'
``enableAutoPipelining`` does; redis-py has no such mode, hence this small class.

Nothing about the counts changes: Redis runs each request's commands in the order given, each
`limits` script atomically, exactly as if the requests had sent them one after another; the
counters stay in Redis, shared by every process and host. A request waits for at most the
rest of the current loop turn before its commands are sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

Command = tuple[Any, ...]


class RedisAutoPipeline:
    def __init__(self, client: Callable[[], Any]) -> None:
        """``client`` returns the redis-py asyncio client to pipeline on (looked up per batch,
        so a client the storage replaces is picked up)."""
        self._client = client
        self._queued: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to ``commands`` in order; a command's error is returned in its place
        (as ``execute(raise_on_error=False)`` does); a connection failure raises."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((commands, future))
        return await future

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.ensure_future(self._send(batch))
        # Held until done: the loop keeps only a weak reference to a task.
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        # Whatever ends the task early (cancelled before it ran, an error while queueing the
        # commands): no request of the batch may wait for an answer that will never come.
        task.add_done_callback(lambda _: _cancel_waiting(batch))

    async def _send(self, batch: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]]) -> None:
        try:
            pipe = self._client().pipeline(transaction=False)
            for commands, _ in batch:
                for command in commands:
                    pipe.execute_command(*command)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    # Each request raises its own copy: one shared object would collect the
                    # tracebacks of every task it is raised in.
                    future.set_exception(_copy(exc))
            return
        start = 0
        for commands, future in batch:
            end = start + len(commands)
            if not future.done():
                future.set_result(replies[start:end])
            start = end

    async def aclose(self) -> None:
        """Let batches already sent finish (their requests are waiting for them)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


def _cancel_waiting(batch: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]]) -> None:
    for _, future in batch:
        if not future.done():
            future.cancel()


def _copy(exc: Exception) -> Exception:
    try:
        copy = type(exc)(*exc.args)
    except Exception:
        return exc
    copy.__cause__ = exc
    return copy
