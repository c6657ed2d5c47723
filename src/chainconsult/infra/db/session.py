"""One transaction per request: it commits when the handler returns, before the response is
sent, and rolls back on any error. Services only ``flush``; they never commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

AfterCommit = Callable[[], Awaitable[None]]


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return maker


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with _sessionmaker(request)() as session:
        async with session.begin():
            yield session
        await run_after_commit(session)


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once the current transaction has committed (never on rollback): cache
    invalidation and other effects that must not be seen before the data is."""
    session.info.setdefault("after_commit", []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        await callback()


# scope="function": the transaction ends before the response is sent, so a client never sees
# a 2xx for a write whose commit then failed.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
