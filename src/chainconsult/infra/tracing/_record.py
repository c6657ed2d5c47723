"""The platform's own spans (the HTTP server span, ``client_span``) recorded the lean way: the
provider's sampler and id generator decide and name the span when it starts, the context
holds only its ``SpanContext`` (a ``NonRecordingSpan``, as for a caller's context), and the
finished span is built once, as the SDK's ``ReadableSpan``, and handed to the batch span
processors. The SDK's mutable ``Span`` (a lock, attribute cleaning on every call, a second
copy at ``end``) cost twice as much CPU on a cached read
(docs/decisions/0045-lean-platform-spans.md); the spans of the instrumentations and jobs are
still the SDK's own. A test holds both kinds to the same exported fields."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import time_ns
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags, get_current_span
from opentelemetry.util.types import AnyValue

_UNSET = Status()
SAMPLED = Decision.RECORD_AND_SAMPLE


@dataclass(frozen=True, slots=True)
class OpenSpan:
    """A span between its start and its end: what its children and log lines see
    (``context``), and what its end needs."""

    context: SpanContext
    parent: SpanContext | None
    recording: bool
    start_time: int
    sampler_attributes: Mapping[str, Any] | None


class SpanRecorder:
    """Starts and ends spans with the provider's sampler, id generator, resource and span
    limits (the ``OTEL_*`` variables the SDK reads), exported through ``processors``."""

    def __init__(
        self,
        *,
        sampler: Sampler,
        id_generator: IdGenerator,
        resource: Resource,
        scope: InstrumentationScope,
        processors: Sequence[SpanProcessor],
    ) -> None:
        self.sampler = sampler
        self.ids = id_generator
        self.resource = resource
        self.scope = scope
        self.processors = tuple(processors)
        # The SDK's own limits, read from OTEL_SPAN_ATTRIBUTE_*_LIMIT and
        # OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT; the checking pass only when one can bite.
        self.limits = SpanLimits()
        self._limited = (
            self.limits.max_span_attribute_length is not None
            or (self.limits.max_span_attributes or 0) < 32
        )

    def start(self, name: str, kind: SpanKind, parent: Context | None = None) -> OpenSpan:
        """What the SDK's ``Tracer.start_span`` decides: the parent (``parent``'s span, or
        the current one), the trace id, the sampler's decision and the trace flags."""
        parent_context: SpanContext | None = get_current_span(parent).get_span_context()
        if parent_context is None or not parent_context.is_valid:
            parent_context = None
            trace_id = self.ids.generate_trace_id()
            random_id = self.ids.is_trace_id_random()
        else:
            trace_id = parent_context.trace_id
            random_id = parent_context.trace_flags.random_trace_id
        result = self.sampler.should_sample(parent, trace_id, name, kind)
        # Decision's is_sampled and is_recording, which are untyped.
        flags = TraceFlags.SAMPLED if result.decision is SAMPLED else TraceFlags.DEFAULT
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        recording = result.decision is not Decision.DROP
        return OpenSpan(
            SpanContext(
                trace_id,
                self.ids.generate_span_id(),
                is_remote=False,
                trace_flags=TraceFlags(flags),
                trace_state=result.trace_state,
            ),
            parent_context,
            recording,
            time_ns(),
            result.attributes if recording else None,
        )

    def end(
        self,
        span: OpenSpan,
        name: str,
        kind: SpanKind,
        attributes: dict[str, AnyValue],
        *,
        status: Status = _UNSET,
        error: BaseException | None = None,
    ) -> None:
        """Hand the finished span to the processors (nothing for a span not recorded)."""
        if not span.recording:
            return
        if span.sampler_attributes:
            attributes = {**span.sampler_attributes, **attributes}
        events: tuple[Event, ...] = () if error is None else (self._exception_event(error),)
        recorded = ReadableSpan(
            name=name,
            context=span.context,
            parent=span.parent,
            resource=self.resource,
            attributes=self._bounded(attributes) if self._limited else attributes,
            events=events,
            kind=kind,
            status=status,
            start_time=span.start_time,
            end_time=time_ns(),
            instrumentation_scope=self.scope,
        )
        for processor in self.processors:
            processor.on_end(recorded)

    def _bounded(self, attributes: Mapping[str, AnyValue]) -> BoundedAttributes:
        return BoundedAttributes(
            self.limits.max_span_attributes,
            attributes,
            immutable=True,
            max_value_len=self.limits.max_span_attribute_length,
        )

    def _exception_event(self, error: BaseException) -> Event:
        """The event the SDK's ``Span.record_exception`` adds for an escaping exception."""
        kind = type(error)
        module = kind.__module__
        return Event(
            "exception",
            BoundedAttributes(
                self.limits.max_event_attributes,
                {
                    "exception.type": f"{module}.{kind.__qualname__}"
                    if module and module != "builtins"
                    else kind.__qualname__,
                    "exception.message": str(error),
                    "exception.stacktrace": "".join(traceback.format_exception(error)),
                    "exception.escaped": "True",
                },
                immutable=True,
                max_value_len=self.limits.max_attribute_length,
            ),
        )
