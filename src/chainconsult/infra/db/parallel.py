"""Independent reads of one request, each on its own pooled connection, at the same time.

A page that needs several unrelated queries (an expert's profile, rating statistics and
recent reviews) waits for the slowest of them instead of their sum. Each read gets a
session of its own in autocommit mode, so reads see separate snapshots: use this only for
reads (never writes) that do not have to agree with each other to the row. It pays off
when the reads take milliseconds each; for sub-millisecond lookups the extra connections
cost more than they save (docs/decisions/0016-parallel-reads-when-idle.md).

Bounded twice: at most ``limit`` reads of one call run at once, and unless the pool is
mostly idle right now (at most half of DATABASE_MAX_CONNECTIONS in use, counting the new
ones), the reads run one after another on the request's own session instead. A busy process
thus never makes requests wait for a second connection while holding a first (the way pools
deadlock under load), and does not trade throughput for latency when it has none to spare."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, overload

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.db.pool import pool_status
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.resources import resources_of

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
Read = Callable[[AsyncSession], Awaitable[A]]

DEFAULT_LIMIT = 4
"""Reads of one call that may hold a connection at the same time."""


class ParallelReader:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        session: AsyncSession,
        *,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.sessionmaker = sessionmaker
        self.session = session
        self.limit = limit
        self.last_run_parallel = False
        """Whether the last ``gather`` used separate connections (for tests and logs)."""

    @overload
    async def gather(self, first: Read[A], second: Read[B], /) -> tuple[A, B]: ...

    @overload
    async def gather(
        self, first: Read[A], second: Read[B], third: Read[C], /
    ) -> tuple[A, B, C]: ...

    @overload
    async def gather(
        self, first: Read[A], second: Read[B], third: Read[C], fourth: Read[D], /
    ) -> tuple[A, B, C, D]: ...

    @overload
    async def gather(self, *reads: Read[Any]) -> tuple[Any, ...]: ...

    async def gather(self, *reads: Read[Any]) -> tuple[Any, ...]:
        """Run every read and return their results in the order given. If one fails, the
        others are cancelled and its exception is raised."""
        self.last_run_parallel = len(reads) > 1 and self._pool_has_room(len(reads))
        if not self.last_run_parallel:
            return tuple([await read(self.session) for read in reads])
        gate = asyncio.Semaphore(self.limit)

        async def run(read: Read[Any]) -> Any:
            async with gate, self.sessionmaker() as session:
                # Autocommit: a lone read needs no BEGIN/COMMIT, and those two extra round
                # trips per read would eat most of what running side by side saves.
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                return await read(session)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(run(read)) for read in reads]
        except BaseExceptionGroup as group_error:
            # Callers handle one error, as they would from sequential reads.
            raise group_error.exceptions[0] from None
        return tuple(task.result() for task in tasks)

    def _pool_has_room(self, wanted: int) -> bool:
        bind = self.sessionmaker.kw.get("bind")
        if bind is None:
            return False
        status = pool_status(bind)
        take = min(wanted, self.limit)
        free = status.capacity - status.checked_out
        # Side by side only while the pool is mostly idle: under load the database is busy
        # with other requests anyway, and extra connections per request cut throughput
        # (docs/decisions/0016-parallel-reads-when-idle.md), so the reads queue up on the
        # request's own connection.
        lightly_used = status.checked_out + take <= max(status.size // 2, take)
        return free >= take and lightly_used


async def _reader(request: Request, session: DbSession) -> ParallelReader:
    # async: FastAPI runs a plain ``def`` dependency on its thread pool.
    return ParallelReader(resources_of(request).sessionmaker, session)


ParallelReads = Annotated[ParallelReader, Depends(_reader)]
"""Endpoint dependency: ``reads.gather(read_profile, read_stats, read_reviews)``."""
