"""The lean ``SpanRecorder`` records what the SDK's own ``Tracer`` would for the same span:
the same ids, trace flags, parent, sampler decision, attribute limits and exception event."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from chainconsult.infra.tracing._record import SpanRecorder


class _Ids(IdGenerator):
    """The same ids, in the same order, for both tracers."""

    def __init__(self) -> None:
        self.next = 0x1000

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return self.next << 64


class _Kept(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _caller(flags: int) -> Context:
    caller = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True,
                         TraceFlags(flags))  # fmt: skip
    return trace.set_span_in_context(NonRecordingSpan(caller))


def _shape(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "context": span.context,
        "parent": span.parent,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "status": (span.status.status_code, span.status.description),
        "events": [
            (e.name, {k: v for k, v in (e.attributes or {}).items() if k != "exception.stacktrace"})
            for e in span.events
        ],
        "resource": span.resource.attributes,
        "scope": span.instrumentation_scope,
    }


def _both(
    sampler: Sampler, parent: Context | None, error: BaseException | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same server span through the SDK's tracer and through the recorder."""
    attributes = {
        "http.route": "/api/v2/experts/{expert_id}",
        "url.path": "/api/v2/experts/" + "x" * 40,
    }
    status = Status(StatusCode.ERROR) if error else Status()
    resource = Resource.create({"service.name": "t"})
    shapes = []
    for lean in (False, True):
        kept = _Kept()
        provider = TracerProvider(sampler=sampler, resource=resource, id_generator=_Ids())
        provider.add_span_processor(kept)
        if lean:
            recorder = SpanRecorder(
                sampler=provider.sampler,
                id_generator=provider.id_generator,
                resource=provider.resource,
                scope=InstrumentationScope("chainconsult", ""),
                processors=[kept],
            )
            started = recorder.start("GET", SpanKind.SERVER, parent)
            recorder.end(started, "GET /x", SpanKind.SERVER, dict(attributes), status=status,
                         error=error)  # fmt: skip
        else:
            span = provider.get_tracer("chainconsult").start_span(
                "GET", context=parent, kind=SpanKind.SERVER
            )
            span.update_name("GET /x")
            span.set_attributes(attributes)
            if error:
                span.record_exception(error, escaped=True)
            span.set_status(status)
            span.end()
        shapes.append([_shape(s) for s in kept.spans])
    return shapes[0], shapes[1]


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "20")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "1")


@pytest.mark.parametrize(
    ("sampler", "parent"),
    [
        (ParentBased(TraceIdRatioBased(1.0)), None),
        (ParentBased(TraceIdRatioBased(1.0)), _caller(1)),
        (ParentBased(TraceIdRatioBased(1.0)), _caller(0)),  # the caller's "no": nothing
        (TraceIdRatioBased(0.0), None),
        (TraceIdRatioBased(1.0), _caller(0)),  # a bare sampler overrules the caller
    ],
)
def test_the_recorder_records_what_the_sdk_records(
    sampler: Sampler, parent: Context | None
) -> None:
    sdk, lean = _both(sampler, parent)
    assert lean == sdk


def test_an_escaping_exception_is_the_sdks_event() -> None:
    sdk, lean = _both(ParentBased(TraceIdRatioBased(1.0)), None, ValueError("bad"))
    assert lean == sdk
    assert lean[0]["events"][0][1]["exception.type"] == "ValueError"


@pytest.mark.usefixtures("limits")
def test_the_attribute_limits_of_the_otel_variables_hold() -> None:
    sdk, lean = _both(ParentBased(TraceIdRatioBased(1.0)), None)
    assert lean == sdk
    assert lean[0]["attributes"] == {"url.path": "/api/v2/experts/xxxx"}
