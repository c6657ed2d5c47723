"""OpenTelemetry tracing, configured only by the standard OTEL_* variables and off by
default (docs/tracing.md): the HTTP server span (TracingMiddleware), SQL spans
(instrument_engine), Redis and httpx spans (redis-py and httpx instrumented while on), the
trace context carried into jobs (job_trace, traced_job) and other later work (trace_carrier,
continued_trace), and spans of outgoing calls (client_span)."""

from chainconsult.infra.tracing._http import TracingMiddleware
from chainconsult.infra.tracing._jobs import JOB_TRACE_KEY, job_trace, job_trace_json, traced_job
from chainconsult.infra.tracing._logs import add_trace_ids, current_ids
from chainconsult.infra.tracing._setup import (
    Tracing,
    TracingConfig,
    active,
    start_tracing,
    stop_tracing,
    tracing_config,
)
from chainconsult.infra.tracing._spans import (
    client_span,
    continued_trace,
    instrument_engine,
    trace_carrier,
)

__all__ = [
    "JOB_TRACE_KEY",
    "Tracing",
    "TracingConfig",
    "TracingMiddleware",
    "active",
    "add_trace_ids",
    "client_span",
    "continued_trace",
    "current_ids",
    "instrument_engine",
    "job_trace",
    "job_trace_json",
    "start_tracing",
    "stop_tracing",
    "trace_carrier",
    "traced_job",
    "tracing_config",
]
