"""Spans of the platform's own code (an SMTP send), the SQL spans of an engine, and the trace
context carried to work done later (an alert delivery); all cost a check of one module global
when tracing is off."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, get_current_span
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.tracing._setup import active

_NO_SPAN = contextlib.nullcontext()


def client_span(name: str, attributes: Mapping[str, str | int]) -> AbstractContextManager[Any]:
    """A CLIENT span around a call to another service, when tracing is on; off, or inside a
    request the sampler left out, a shared no-op (no generator is built: the rate limiter's
    Redis call is on the cached read path)."""
    tracing = active()
    if tracing is None:
        return _NO_SPAN
    parent = get_current_span()
    if tracing.parent_based and not parent.is_recording() and parent.get_span_context().is_valid:
        return _NO_SPAN  # inside a request the sampler left out: so is this call
    return tracing.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def trace_carrier() -> dict[str, str] | None:
    """The active span's context as a W3C carrier, to store with work done later; None with
    tracing off or no span."""
    if active() is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def continued_trace(carrier: Mapping[str, str] | None) -> AbstractContextManager[Any]:
    """The block runs in the trace ``carrier`` was taken from (its spans, an httpx call's
    among them, become children of that span), when tracing is on and there is a carrier."""
    if carrier is None or active() is None:
        return _NO_SPAN
    return _attached(propagate.extract(carrier))


@contextlib.contextmanager
def _attached(context: Context) -> Iterator[None]:
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def instrument_engine(engine: AsyncEngine) -> None:
    """One span per statement on ``engine`` (opentelemetry-instrumentation-sqlalchemy's
    event listeners on the sync engine under it), when tracing is on."""
    tracing = active()
    if tracing is None:
        return
    from opentelemetry import metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # The pool-usage counter wants a meter; the process exports no OpenTelemetry metrics
    # (Prometheus has them), so the global no-op one.
    usage: Any = metrics.get_meter("chainconsult").create_up_down_counter(
        "db.client.connections.usage"
    )
    EngineTracer(tracing.tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]
