"""Spans of the platform's own code (an SMTP send), the SQL spans of an engine, and the trace
context carried to work done later (an alert delivery); all cost a check of one module global
when tracing is off."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanKind,
    Status,
    StatusCode,
    get_current_span,
    set_span_in_context,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.tracing._setup import active

# The SDK is loaded only when tracing starts (_setup), and this module with the package.
if TYPE_CHECKING:
    from chainconsult.infra.tracing._record import SpanRecorder

_NO_SPAN = contextlib.nullcontext()
_UNSET = Status()


def client_span(name: str, attributes: dict[str, str | int]) -> AbstractContextManager[Any]:
    """A CLIENT span around a call to another service, when tracing is on; off, or inside a
    request the sampler left out, a shared no-op (no generator is built: the rate limiter's
    Redis call is on the cached read path)."""
    tracing = active()
    if tracing is None:
        return _NO_SPAN
    parent = get_current_span().get_span_context()
    if tracing.parent_based and parent.is_valid and not parent.trace_flags.sampled:
        return _NO_SPAN  # inside a request the sampler left out: so is this call
    return _ClientSpan(tracing.recorder, name, attributes)


class _ClientSpan:
    """``client_span``'s span, recorded by the lean ``SpanRecorder`` (a class, not a
    generator: it is entered on every rate-limit batch)."""

    __slots__ = ("attributes", "name", "recorder", "span", "token")

    def __init__(self, recorder: SpanRecorder, name: str, attributes: dict[str, str | int]) -> None:
        self.recorder = recorder
        self.name = name
        self.attributes = attributes

    def __enter__(self) -> None:
        self.span = self.recorder.start(self.name, SpanKind.CLIENT)
        self.token = otel_context.attach(set_span_in_context(NonRecordingSpan(self.span.context)))

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        otel_context.detach(self.token)
        self.recorder.end(
            self.span,
            self.name,
            SpanKind.CLIENT,
            # Copied: the SDK keeps the mapping it is given, and callers pass a constant.
            dict(self.attributes),
            status=_UNSET if error is None else Status(StatusCode.ERROR, _describe(error)),
            error=error,
        )


def _describe(error: BaseException) -> str:
    """The status description ``start_as_current_span`` gives an escaping exception."""
    return f"{type(error).__name__}: {error}"


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
