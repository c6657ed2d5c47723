"""The procrastinate App every task is registered on, and the one decorator domains use to
declare a task.

The App is created at import (tasks bind to it when their module is imported) but connects
nowhere: its connector gets a pool only inside ``open_job_app`` (worker.py), from the
settings of the process that runs the worker. Requests never need that pool: they defer on
their own transaction's connection (defer.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import orjson
from procrastinate import App, JobContext, PsycopgConnector
from procrastinate.tasks import Task

from chainconsult.infra.jobs.outcomes import OutcomeRecordingJobManager
from chainconsult.infra.jobs.queues import Queue
from chainconsult.infra.jobs.retry import Backoff

P = ParamSpec("P")
R = TypeVar("R")


def json_dumps(value: Any) -> str:
    # orjson: faster, and UUIDs and datetimes in job arguments become ISO strings.
    return orjson.dumps(value).decode()


def new_connector(**pool_args: Any) -> PsycopgConnector:
    return PsycopgConnector(json_dumps=json_dumps, json_loads=orjson.loads, **pool_args)


job_app = App(connector=new_connector())
# Its outcome updates survive a lost connection (outcomes.py); App has no argument for it.
job_app.job_manager = OutcomeRecordingJobManager(connector=job_app.connector)

DEFAULT_RETRY = Backoff()


def task(
    *,
    name: str,
    queue: Queue,
    retry: Backoff | None = DEFAULT_RETRY,
    lock: str | None = None,
) -> Callable[
    [Callable[Concatenate[JobContext, P], Awaitable[R]]],
    Task[Concatenate[JobContext, P], Awaitable[R], P],
]:
    """Declare an async task. It receives the JobContext first (``resources(context)``
    gives the settings and a database sessionmaker), then keyword arguments that must be
    JSON values. ``name`` is stored in each job row: keep it stable across releases."""
    return job_app.task(
        name=name,
        queue=queue.value,
        priority=queue.priority,
        retry=retry or False,
        lock=lock,
        pass_context=True,
    )
