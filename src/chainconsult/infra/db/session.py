"""The transaction of each kind of work (docs/database.md#transactions): a request's
(``DbSession``) commits when the handler returns, before the response is sent; a job's step or
a command's (``transaction``) when its block ends. Both roll back on any error and run the
``after_commit`` callbacks once committed, the ``on_rollback`` ones when it did not commit.
Services only ``flush``; they never commit.

A request whose write races with other requests runs it through ``unit_of_work`` or
``one_statement`` (transaction.py), which commit the request's session early and can run
the work again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import structlog
from fastapi import Depends, Request
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.db.faults import is_connection_loss
from chainconsult.infra.db.writes import transaction_wrote
from chainconsult.infra.http_errors import CommitOutcomeUnknown
from chainconsult.infra.resources import resources_of

log = structlog.get_logger("chainconsult.db")

AfterCommit = Callable[[], Awaitable[None]]


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return resources_of(request).sessionmaker


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with lazily_closed(_sessionmaker(request)()) as session:
        try:
            yield session
        except BaseException:
            await _roll_back(session)
            raise
        await _commit_and_follow_up(session)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The transaction of work outside a request (a job's step, a command): committed when
    the block ends, rolled back on any error, ``after_commit`` callbacks run once committed."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await _roll_back(session)
            raise
        await _commit_and_follow_up(session)


async def _roll_back(session: AsyncSession) -> None:
    await not_committed(session)
    await session.rollback()


async def _commit_and_follow_up(session: AsyncSession) -> None:
    await commit(session)
    await run_after_commit(session)


@asynccontextmanager
async def lazily_closed(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """``session``, closed on exit only when there is something to close. A request answered
    from the cache never queries, and ``AsyncSession.close()`` costs a greenlet switch even
    then (about 70 µs of CPU, as much as the rest of the edge stack:
    docs/decisions/0010-lazily-closed-sessions.md). Nothing is held outside a transaction: no
    transaction and no ORM object in the identity map means no connection to return and
    nothing to expunge."""
    try:
        yield session
    finally:
        if session.in_transaction() or session.identity_map:
            # The session's own exit, not a bare close(): SQLAlchemy runs it to completion
            # even when this task is cancelled (a graceful-shutdown timeout, a caller's
            # wait_for), so a connection is never left checked out mid-close.
            await session.__aexit__(None, None, None)


async def commit(session: AsyncSession) -> None:
    """Flush, then commit. A failure while flushing is an ordinary error (nothing was
    stored); a connection lost during the COMMIT of a transaction that wrote leaves the
    outcome unknown, which the caller hears as ``CommitOutcomeUnknown`` and which is never
    replayed. (Had it only read, the loss is an ordinary transient fault.)"""
    if not session.in_transaction():
        return
    try:
        await session.flush()
    except BaseException:
        await not_committed(session)
        raise
    wrote = transaction_wrote(session)
    try:
        await session.commit()
    except sa_exc.DBAPIError as exc:
        if wrote and is_connection_loss(exc):
            discard_after_commit(session)
            raise CommitOutcomeUnknown() from exc
        await not_committed(session)
        raise


async def statement_timeout(session: AsyncSession, milliseconds: int) -> None:
    """Change DATABASE_STATEMENT_TIMEOUT for the rest of this transaction only: lower for a
    query that must never be slow, higher for a known heavy report (0: no limit)."""
    if milliseconds < 0:
        raise ValueError("milliseconds must be >= 0")
    # SET takes no bind parameters; int() keeps the value a plain number.
    await session.execute(text(f"SET LOCAL statement_timeout = {int(milliseconds)}"))


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once the current transaction has committed (never on rollback): cache
    invalidation and other effects that must not be seen before the data is."""
    session.info.setdefault("after_commit", []).append(callback)


def on_rollback(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` if the current transaction ends without committing: undo an effect
    made outside the database before the commit (a stored file whose row was not saved).
    Not run when the outcome of the COMMIT is unknown: the row may be there."""
    session.info.setdefault("on_rollback", []).append(callback)


def discard_after_commit(session: AsyncSession) -> None:
    """Forget the callbacks of the current transaction, both kinds."""
    session.info.pop("after_commit", None)
    session.info.pop("on_rollback", None)


async def not_committed(session: AsyncSession) -> None:
    """The current transaction will not commit: forget its ``after_commit`` callbacks and
    run its ``on_rollback`` ones (a failing one is logged, never raised over the error that
    ended the transaction)."""
    undo: list[AfterCommit] = session.info.pop("on_rollback", [])
    discard_after_commit(session)
    for callback in undo:
        try:
            await callback()
        except Exception:
            log.exception("on_rollback_failed")


async def run_after_commit(session: AsyncSession) -> None:
    session.info.pop("on_rollback", None)
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        await callback()


# scope="function": the transaction ends before the response is sent, so a client never sees
# a 2xx for a write whose commit then failed.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
