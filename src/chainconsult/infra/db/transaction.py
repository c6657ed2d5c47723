"""Units of work that are run again when the database says "try again".

The request's own transaction (``DbSession``) commits after the handler has returned, so it
cannot re-run the handler's body. A write whose invariant races with other requests
(accepting a proposal, spending a quota, rating an expert) therefore goes through
``unit_of_work``: the work is a callable taking the session; it runs in a transaction of its
own, which is committed here; on a serialization failure (40001), a deadlock (40P01) or a
connection lost *before* the commit, everything is rolled back and the callable runs again
from the start, after an exponential backoff with jitter (stamina). A connection lost
*during* the commit is different: the change may or may not be stored, so it is never
replayed and the caller gets ``CommitOutcomeUnknown`` (a 503 problem).

Usage in an endpoint, on the request's session::

    return await unit_of_work(session, lambda s: ProposalService(s).accept(...))

and in a job, with a session of its own::

    await run_in_transaction(sessionmaker, lambda s: QuotaService(s).reset(...))

The callable must hold every write of the request and must be safe to run twice (no
e-mails or HTTP calls inside it: register those with ``after_commit``, which runs once,
after the successful commit). Reads done before it are committed first, so the unit of work
starts a transaction of its own with the isolation level it asks for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

import stamina
import structlog
from sqlalchemy import Executable, Row
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.db.faults import is_connection_loss, is_retryable, sqlstate
from chainconsult.infra.db.session import (
    commit,
    discard_after_commit,
    not_committed,
    run_after_commit,
)
from chainconsult.infra.db.writes import transaction_wrote
from chainconsult.infra.http_errors import CommitOutcomeUnknown
from chainconsult.infra.monitoring.metrics import db_transaction_retries_total

T = TypeVar("T")
Isolation = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]
Work = Callable[[AsyncSession], Awaitable[T]]

log = structlog.get_logger("chainconsult.db")

ATTEMPTS = 6
"""Runs of the work at most, the first included."""
# The first retry waits 20 ms (+ up to 30 ms of jitter, so colliding requests spread out),
# doubling up to 0.5 s; the whole unit of work gives up after 10 s.
WAIT_INITIAL_S = 0.02
WAIT_MAX_S = 0.5
WAIT_JITTER_S = 0.03
TIMEOUT_S = 10.0


async def unit_of_work(
    session: AsyncSession,
    work: Work[T],
    *,
    isolation: Isolation = "READ COMMITTED",
    attempts: int = ATTEMPTS,
) -> T:
    """Run ``work(session)`` in a transaction of its own and commit it, running it again on
    a serialization failure, deadlock or lost connection before the commit."""
    await _end_earlier_work(session, "unit_of_work")
    result: T | None = None
    async for attempt in stamina.retry_context(
        on=is_retryable,
        attempts=attempts,
        timeout=TIMEOUT_S,
        wait_initial=WAIT_INITIAL_S,
        wait_max=WAIT_MAX_S,
        wait_jitter=WAIT_JITTER_S,
    ):
        with attempt:
            if attempt.num > 1:
                db_transaction_retries_total.inc()
            result = await _run_once(session, work, isolation)
    await run_after_commit(session)
    return result  # type: ignore[return-value]  # set by the attempt that succeeded


async def one_statement(
    session: AsyncSession, statement: Executable, parameters: Mapping[str, Any]
) -> Row[Any] | None:
    """A unit of work that is a single statement, sent without a transaction block
    (autocommit): PostgreSQL runs one statement atomically, so it needs no BEGIN and no
    COMMIT, two round trips fewer than ``unit_of_work``. For a write whose checks are all in
    its SQL (it writes nothing when they fail) and whose first row tells the caller what
    happened; returns that row.

    Any error but a lost connection means nothing was written. A connection lost once the
    statement may have reached the server leaves the outcome unknown: ``CommitOutcomeUnknown``,
    never replayed. Work done on the session before is committed first, as in
    ``unit_of_work``; callbacks the caller registers afterwards (``after_commit``) run when
    the request's session ends."""
    await _end_earlier_work(session, "one_statement")
    connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        row = (await connection.execute(statement, parameters)).first()
    except sa_exc.DBAPIError as exc:
        await _abandon(session, outcome_known=not is_connection_loss(exc))
        if is_connection_loss(exc):
            raise CommitOutcomeUnknown() from exc
        raise
    # Ends the session's transaction object; in autocommit nothing is sent.
    await session.commit()
    return row


async def _end_earlier_work(session: AsyncSession, what: str) -> None:
    """End the request's transaction (its reads so far): the unit of work needs a fresh one
    to set its isolation level (or autocommit), and holding two connections per request
    could starve the pool under load. Unsaved changes are refused: the unit of work must
    hold every write of the request."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError(
            f"{what} must hold every write of the request, but the session already has "
            "unsaved changes"
        )
    await commit(session)
    await run_after_commit(session)


async def run_in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Work[T],
    *,
    isolation: Isolation = "READ COMMITTED",
    attempts: int = ATTEMPTS,
) -> T:
    """``unit_of_work`` on a session of its own: for jobs, commands and other code that runs
    outside a request."""
    async with sessionmaker() as session:
        return await unit_of_work(session, work, isolation=isolation, attempts=attempts)


async def _run_once(session: AsyncSession, work: Work[T], isolation: Isolation) -> T:
    try:
        # The first statement of the transaction fixes its isolation level.
        await session.connection(execution_options={"isolation_level": isolation})
        result = await work(session)
        await session.flush()
    except BaseException as exc:
        await _abandon(session)
        if is_retryable(exc):
            log.info(
                "transaction_rolled_back_retryable",
                sqlstate=sqlstate(exc),
                error=type(exc).__name__,
            )
        raise
    wrote = transaction_wrote(session)
    try:
        await session.commit()
    except sa_exc.DBAPIError as exc:
        await _abandon(session, outcome_known=not (wrote and is_connection_loss(exc)))
        if wrote and is_connection_loss(exc):
            # The COMMIT may have been applied before the connection broke: never replay.
            raise CommitOutcomeUnknown() from exc
        # The server refused the commit (a serialization failure detected at commit time,
        # a deferred constraint): nothing was stored, so a retry is safe if the error is
        # retryable.
        raise
    return result


async def _abandon(session: AsyncSession, *, outcome_known: bool = True) -> None:
    """Roll back; ``on_rollback`` callbacks run only when nothing can have been stored."""
    if outcome_known:
        await not_committed(session)
    else:
        discard_after_commit(session)
    try:
        await session.rollback()
    except sa_exc.DBAPIError:
        # The connection is already gone; closing releases it and leaves the session usable
        # for the next attempt.
        await session.close()
