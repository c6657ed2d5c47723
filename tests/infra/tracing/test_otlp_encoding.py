"""The hand-written OTLP request body is the very message the SDK's encoder builds, for spans
of every shape: the usual ones it writes itself and the others it hands to the SDK."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from chainconsult.infra.tracing._otlp import encode_request

_REMOTE = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True,
                      TraceFlags(1))  # fmt: skip


def _server_request(tracer: trace.Tracer) -> None:
    parent = trace.set_span_in_context(NonRecordingSpan(_REMOTE))
    with (
        tracer.start_as_current_span(
            "GET /api/v2/experts/{expert_id}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.response.status_code": 200},
        ),
        tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as sql,
    ):
        sql.set_attributes({"db.system": "postgresql", "db.statement": "SELECT 1 — é"})


def _scalars(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("job x", kind=SpanKind.CONSUMER) as span:
        span.set_attributes(
            {
                "yes": True,
                "no": False,
                "zero": 0,
                "negative": -3,
                "big": 2**62,
                "ratio": 0.25,
                "empty": "",
                "raw": b"\x00\xff",
            }
        )
        span.set_status(Status(StatusCode.ERROR, "upstream 502"))


def _ok_and_unnamed(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("", kind=SpanKind.INTERNAL) as span:
        span.set_status(Status(StatusCode.OK))


def _with_event(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("failing") as span:
        span.add_event("exception", {"exception.type": "ValueError"})


def _with_link_and_sequence(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("batch", links=[Link(_REMOTE, {"n": 1})]) as span:
        span.set_attribute("ids", [1, 2, 3])


def _sequence_only(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("tags") as span:
        span.set_attribute("tags", ("a", "b"))


def _spans(*record: Callable[[trace.Tracer], None]) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "test", "n": 2}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracers = [provider.get_tracer("chainconsult"), provider.get_tracer("other", "1.2")]
    for index, recorder in enumerate(record):
        recorder(tracers[index % 2])
    provider.shutdown()
    return list(exporter.get_finished_spans())


@pytest.mark.parametrize(
    "record",
    [
        (_server_request,),
        (_server_request, _scalars, _ok_and_unnamed),
        (_server_request, _with_event),
        (_with_link_and_sequence,),
        (_scalars, _sequence_only),
    ],
)
def test_the_request_body_is_the_message_the_sdk_encodes(
    record: tuple[Callable[[trace.Tracer], None], ...],
) -> None:
    spans = _spans(*record)
    for _ in range(2):  # the second time from the attribute cache
        ours = ExportTraceServiceRequest.FromString(encode_request(spans))
        assert ours == encode_spans(spans)
