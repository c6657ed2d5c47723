"""Log lines carry the active span's ids whichever logger writes them, including one first
used before tracing started (structlog caches a logger's chain on first use)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from chainconsult.infra.monitoring.logging import access_line, configure_logging, flush_logs
from chainconsult.infra.tracing import active, start_tracing, stop_tracing
from tests.infra.tracing.otlp import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    yield stream
    configure_logging("INFO")


def test_a_logger_used_before_tracing_started_writes_trace_ids(
    receiver: OtlpReceiver, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = structlog.get_logger("tests.tracing.early")
    log.info("before_tracing")  # its chain is now cached
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    assert start_tracing()
    try:
        tracing = active()
        assert tracing is not None
        with tracing.tracer.start_as_current_span("work") as span:
            log.info("inside_span")
            access_line(method="GET", path="/x", status=200, duration_ms=1.0, request_id="r")
        log.info("after_span")
    finally:
        stop_tracing()
    flush_logs()

    lines = {line["event"]: line for line in map(json.loads, log_stream.getvalue().splitlines())}
    context = span.get_span_context()
    ids = (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert (lines["inside_span"]["trace_id"], lines["inside_span"]["span_id"]) == ids
    assert (lines["request"]["trace_id"], lines["request"]["span_id"]) == ids
    assert "trace_id" not in lines["before_tracing"]
    assert "trace_id" not in lines["after_span"]
