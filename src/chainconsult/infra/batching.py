"""Calls made while a batch is out, sent together as the next one.

Two kinds of Redis call are made once per request: the rate limiter's decision and the cache's
L2 lookup (every authenticated request reads its login there,
docs/decisions/0030-login-revocation-without-l1.md). Sent one by one, each costs a command to
pack, a reply to parse and a round trip through the event loop; on a busy 2-core host that was
the largest part of a cached read's CPU (docs/decisions/0013-rate-limit-group-commit.md), and
the login lookup a third of an authenticated read's
(docs/decisions/0049-cache-lookups-in-batches.md). The calls asked for while a batch is out are
therefore handed to one ``send`` call when it is back (the limiter sends its decisions as one
script call, the cache its lookups as one MGET), the way ioredis' ``enableAutoPipelining``
groups commands and a database groups commits; redis-py has no such mode, hence this small
class.

Nothing about the results changes: Redis runs a batch's commands in the order given, atomically,
exactly as if the requests had sent them one after another. A request waits for at most the
rest of its loop turn and the round trip of the batch ahead of it before its call is sent."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Send = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]
"""Sends a batch; answers one result per item, in order (an item's own error in its place),
or raises for the whole batch (a lost connection)."""


class RoundTripBatcher(Generic[T, R]):
    """At most one batch out at a time: the first call goes at the end of its loop turn, with
    the calls made in that turn; calls made while a batch is out wait for its round trip and
    then go together, as the next batch (group commit). Idle, a call waits for nothing more
    than its own loop turn; busy, the batches grow with the load instead of the round trips,
    and each round trip (a few tens of µs of CPU on each side) is shared by more calls."""

    def __init__(self, send: Send[T, R]) -> None:
        self._send = send
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._first_context: contextvars.Context | None = None
        self._sending: asyncio.Task[None] | None = None
        self._flush_due = False

    async def submit(self, item: T) -> R:
        """``item``'s result once its batch has been sent; its error, or the batch's, raises."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._queued:
            # The batch runs in its first caller's context (its trace, its log fields), not
            # in that of whichever earlier batch happened to flush it.
            self._first_context = contextvars.copy_context()
        self._queued.append((item, future))
        if self._sending is None and not self._flush_due:
            self._flush_due = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_due = False
        if self._sending is not None or not self._queued:
            return
        batch, self._queued = self._queued, []
        context, self._first_context = self._first_context, None
        task = asyncio.get_running_loop().create_task(self._run(batch), context=context)
        # Held until done (the loop keeps only a weak reference to a task), and the mark that
        # a batch is out.
        self._sending = task
        task.add_done_callback(lambda _: self._sent(batch))

    def _sent(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        # Whatever ended the task early (cancelled before it ran, an error while building the
        # batch): no request of the batch may wait for an answer that will never come.
        _cancel_waiting(batch)
        self._sending = None
        # The calls that came while this batch was out go now, together.
        self._flush()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._send([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    # Each request raises its own copy: one shared object would collect the
                    # tracebacks of every task it is raised in.
                    future.set_exception(_copy(exc))
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def aclose(self) -> None:
        """Let the batch that is out, and those queued behind it, finish (their requests are
        waiting for them)."""
        while self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)


def _cancel_waiting(batch: Sequence[tuple[object, asyncio.Future[R]]]) -> None:
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
