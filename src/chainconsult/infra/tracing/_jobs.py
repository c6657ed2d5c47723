"""The trace context travels with each job deferred while a span is active, as one reserved
keyword argument (``_trace``, a W3C carrier); the worker takes it out before the task sees
its arguments and runs the job in a span of that trace."""

from __future__ import annotations

from typing import Any

import orjson
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from procrastinate import JobContext

from chainconsult.infra.tracing._setup import active
from chainconsult.infra.tracing._spans import trace_carrier

JOB_TRACE_KEY = "_trace"


def job_trace() -> dict[str, str] | None:
    """The carrier to store with a job deferred now, or None (tracing off, or no span)."""
    return trace_carrier()


def job_trace_json() -> str | None:
    """``{"_trace": carrier}`` as JSON text, for jobs whose arguments are built in SQL."""
    carrier = job_trace()
    return None if carrier is None else orjson.dumps({JOB_TRACE_KEY: carrier}).decode()


async def traced_job(call_next: Any, context: JobContext, worker: Any) -> Any:
    """procrastinate worker middleware, outermost. Always takes the carrier out of the
    arguments, even with tracing off here: a job deferred by a tracing process must not
    fail on an argument its task does not have."""
    job = context.job
    # The worker calls the task with this very dict after the middleware chain.
    carrier = job.task_kwargs.pop(JOB_TRACE_KEY, None)
    tracing = active()
    if tracing is None:
        return await call_next()
    parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
    with tracing.tracer.start_as_current_span(
        f"job {job.task_name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "procrastinate",
            "messaging.operation.type": "process",
            "messaging.destination.name": job.queue,
            "messaging.message.id": str(job.id),
            "chainconsult.job.attempt": job.attempts + 1,
        },
    ):
        return await call_next()
