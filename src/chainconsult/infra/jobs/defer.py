"""Transactional enqueue: the one way the rest of the code creates jobs.

A job deferred with ``defer(session, task, ...)`` is inserted on the very connection and
transaction of ``session`` (procrastinate's external-connection support with the psycopg
driver), so it exists if and only if that transaction commits: a request that fails after
deferring leaves no job, and no worker can see the job before the data it refers to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, cast

from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.tasks import Task
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.db.writes import mark_written

P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class DeferOptions:
    queueing_lock: str | None = None
    """At most one waiting job per value: a second defer is skipped (``defer`` returns
    None) without disturbing the caller's transaction."""
    lock: str | None = None
    """Jobs sharing a lock never run at the same time."""
    delay_seconds: float | None = None
    """Run no sooner than this many seconds from now."""
    priority: int | None = None
    """Overrides the queue's priority for this job."""


async def defer(
    session: AsyncSession,
    task: Task[Any, Any, P],
    options: DeferOptions | None = None,
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> int | None:
    """Queue ``task(**kwargs)`` inside ``session``'s transaction; returns the job id, or None
    when ``options.queueing_lock`` found a job already waiting."""
    if args:
        raise TypeError("tasks take keyword arguments only")
    options = options or DeferOptions()
    raw = await _writing_connection(session)
    deferrer = task.configure(
        connection=raw,
        lock=options.lock,
        queueing_lock=options.queueing_lock,
        priority=options.priority,
        schedule_at=(
            dt.datetime.now(dt.UTC) + dt.timedelta(seconds=options.delay_seconds)
            if options.delay_seconds is not None
            else None
        ),
    )
    arguments = cast(dict[str, Any], kwargs)
    if options.queueing_lock is None:
        return await deferrer.defer_async(**arguments)
    # The unique-index violation would abort the whole transaction; inside a savepoint only
    # the savepoint is rolled back and the request carries on.
    try:
        async with session.begin_nested():
            # SQLAlchemy emits SAVEPOINT lazily, at the session's next use of the connection.
            await session.connection()
            return await deferrer.defer_async(**arguments)
    except AlreadyEnqueued:
        return None


async def defer_many(
    session: AsyncSession, task: Task[Any, Any, Any], arguments: Sequence[dict[str, Any]]
) -> list[int]:
    """Queue one ``task`` job per item of ``arguments`` (keyword arguments each) inside
    ``session``'s transaction, in one statement however many there are; returns their ids."""
    if not arguments:
        return []
    raw = await _writing_connection(session)
    return await task.configure(connection=raw).batch_defer_async(*arguments)


async def _writing_connection(session: AsyncSession) -> Any:
    """The psycopg connection under ``session``'s transaction, for procrastinate to insert
    on. Its writes are unseen by the session, so they are declared: a COMMIT lost after
    this is a write's (never replayed), not a read's."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    mark_written(session)
    return raw
