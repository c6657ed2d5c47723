"""Transactional enqueue: the one way the rest of the code creates jobs.

A job deferred with ``defer(session, task, ...)`` is inserted on the very connection and
transaction of ``session`` (procrastinate's external-connection support with the psycopg
driver), so it exists if and only if that transaction commits: a request that fails after
deferring leaves no job, and no worker can see the job before the data it refers to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, cast

from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.tasks import Task
from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    Text,
    bindparam,
    func,
    literal,
    literal_column,
    null,
    select,
    tuple_,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import UserDefinedType

from chainconsult.infra.db.writes import mark_written
from chainconsult.infra.tracing import JOB_TRACE_KEY, job_trace, job_trace_json

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
    arguments = _traced(cast(dict[str, Any], kwargs))
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
    return await task.configure(connection=raw).batch_defer_async(
        *(_traced(item) for item in arguments)
    )


def _traced(arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` and, while a span is active, the trace context the job continues
    (infra/tracing): its email or webhook shows in the request's trace."""
    trace = job_trace()
    return arguments if trace is None else {**arguments, JOB_TRACE_KEY: trace}


class _JobToDefer(UserDefinedType[Any]):
    """procrastinate's ``procrastinate_job_to_defer_v1`` composite: queue, task, priority,
    lock, queueing lock, arguments (jsonb), scheduled time."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "procrastinate_job_to_defer_v1"


_JOB_TRACE = bindparam("job_trace", type_=Text, callable_=job_trace_json)
"""The trace context of jobs queued in SQL, read when the statement runs (NULL with tracing
off): the statements are module constants, built before any request."""


def deferring_each(
    task: Task[Any, Any, Any], rows: CTE, arguments: Mapping[str, ColumnElement[Any]]
) -> Select[list[int] | None]:
    """A SELECT that queues one ``task`` job per row of ``rows`` (typically ``INSERT ...
    RETURNING`` as a CTE), its keyword arguments computed in SQL from that row's columns, so
    that rows and jobs reach PostgreSQL as one statement. Build it once (a module constant:
    SQLAlchemy then compiles it once) and run it with ``defer_each``.

    The jobs go through procrastinate's own enqueue function (``procrastinate_defer_jobs_v1``,
    what ``defer_many`` runs), only built from SQL values: with ``defer_many`` the rows would
    need a round trip of their own first, and it dumps each job as a composite in Python
    (docs/decisions/0014-notification-jobs-in-one-statement.md). Tasks with a queueing lock
    are refused: a waiting duplicate would abort the whole statement."""
    if task.queueing_lock is not None:
        raise ValueError(f"{task.name} has a queueing lock: use defer() for it")
    job = sql_cast(
        tuple_(
            literal(task.queue),
            literal(task.name),
            literal(task.priority),
            literal(task.lock) if task.lock is not None else null(),
            null(),
            func.jsonb_build_object(
                *(part for name, value in arguments.items() for part in (literal(name), value))
            ).op("||")(func.coalesce(sql_cast(_JOB_TRACE, JSONB), literal_column("'{}'::jsonb"))),
            null(),
        ),
        _JobToDefer(),
    )
    return select(func.procrastinate_defer_jobs_v1(func.array_agg(job))).select_from(rows)


async def defer_each(
    session: AsyncSession,
    statement: Select[list[int] | None],
    parameters: Mapping[str, Any],
) -> list[int]:
    """Run a ``deferring_each`` statement with ``parameters`` inside ``session``'s
    transaction; returns the ids of the jobs it queued."""
    ids = (await session.execute(statement, parameters)).scalar_one()
    # A SELECT to the session's write tracking; its CTE and the function write.
    mark_written(session)
    return list(ids or [])


async def _writing_connection(session: AsyncSession) -> Any:
    """The psycopg connection under ``session``'s transaction, for procrastinate to insert
    on. Its writes are unseen by the session, so they are declared: a COMMIT lost after
    this is a write's (never replayed), not a read's."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    mark_written(session)
    return raw
