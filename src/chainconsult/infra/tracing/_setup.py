"""Whether this process traces, decided from the standard OTEL_* variables alone, and the
tracer provider it exports with. Off unless an exporter is configured: no variable set costs
nothing per request (nothing is installed), see docs/tracing.md."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import structlog
from opentelemetry.trace import Tracer

# The SDK, the exporter and the instrumentations are imported only when tracing starts: a
# process with tracing off neither loads nor keeps them.
if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from chainconsult.infra.tracing._record import SpanRecorder

log = structlog.get_logger(__name__)

SERVICE_NAME = "chainconsult"
TRACER_NAME = "chainconsult"
"""The instrumentation scope of the platform's own spans."""
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_SUPPORTED_EXPORTERS = ("otlp", "console")


@dataclass(frozen=True, slots=True)
class TracingConfig:
    exporters: tuple[str, ...]
    """``otlp`` (OTLP over HTTP with protobuf) and/or ``console``."""


def tracing_config(environ: Mapping[str, str]) -> TracingConfig | None:
    """None (tracing off) unless OTEL_TRACES_EXPORTER names an exporter, or an OTLP endpoint
    is set (which implies ``otlp``). The SDK's own default exporter is ``otlp`` to
    localhost: that would make every process trace by default, hence this rule."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    named = [
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    if not named and any(environ.get(key) for key in _OTLP_ENDPOINTS):
        named = ["otlp"]
    exporters = tuple(name for name in named if name in _SUPPORTED_EXPORTERS)
    for name in set(named) - set(exporters) - {"none"}:
        log.warning("otel_exporter_unsupported", exporter=name, supported=_SUPPORTED_EXPORTERS)
    for key in _PROTOCOLS:
        if environ.get(key, "http/protobuf") != "http/protobuf":
            log.warning("otel_protocol_unsupported", variable=key, using="http/protobuf")
    return TracingConfig(exporters) if exporters else None


def _resource(environ: Mapping[str, str]) -> Resource:
    from opentelemetry.sdk.resources import Resource

    try:
        attributes: dict[str, str] = {"service.version": version("chainconsult")}
    except PackageNotFoundError:
        attributes = {}
    # Resource.create lets explicit attributes win over the variables: name the service only
    # when the operator did not.
    named = "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if not environ.get("OTEL_SERVICE_NAME") and not named:
        attributes["service.name"] = SERVICE_NAME
    return Resource.create(attributes)


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from chainconsult.infra.tracing._otlp import OtlpSpanExporter

    # Endpoint, headers, timeout and compression come from the OTEL_EXPORTER_OTLP_* variables.
    return OtlpSpanExporter()


@dataclass(frozen=True, slots=True)
class Tracing:
    provider: TracerProvider
    tracer: Tracer
    """The SDK's tracer, for the spans of jobs and of the instrumentations."""
    recorder: SpanRecorder
    """The platform's own server and client spans (``_record``)."""
    parent_based: bool
    """The sampler follows the parent's decision (every sampler OTEL_TRACES_SAMPLER names but
    the bare ``always_on``, ``always_off`` and ``traceidratio``): a child of a span left out
    is left out too, and need not be started to learn it."""


_active: Tracing | None = None


def active() -> Tracing | None:
    """The process's tracing, or None when it is off (the default)."""
    return _active


def start_tracing(environ: Mapping[str, str] | None = None) -> bool:
    """Set tracing up for this process from the OTEL_* variables, once; True when it is on.
    The sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on) and the batch
    processor (OTEL_BSP_*) read their variables themselves."""
    global _active
    if _active is not None:
        return True
    environ = os.environ if environ is None else environ
    config = tracing_config(environ)
    if config is None:
        return False
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from chainconsult.infra.tracing._record import SpanRecorder

    provider = TracerProvider(resource=_resource(environ))
    processors = [BatchSpanProcessor(_exporter(name)) for name in config.exporters]
    for processor in processors:
        provider.add_span_processor(processor)
    # Every redis-py client of the process, the cache's and the health checks' alike.
    RedisInstrumentor().instrument(tracer_provider=provider)
    # Every httpx client's requests (alert webhooks, PagerDuty) as client spans that send
    # ``traceparent``: the receiver's own trace continues ours.
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    recorder = SpanRecorder(
        sampler=provider.sampler,
        id_generator=provider.id_generator,
        resource=provider.resource,
        # As the SDK's get_tracer makes it: its spans and ours share one ScopeSpans.
        scope=InstrumentationScope(TRACER_NAME, ""),
        processors=processors,
    )
    _active = Tracing(
        provider,
        provider.get_tracer(TRACER_NAME),
        recorder,
        isinstance(provider.sampler, ParentBased),
    )
    log.info("tracing_started", exporters=list(config.exporters))
    return True


def stop_tracing() -> None:
    """Export what is still buffered and undo the instrumentation (a process may start an
    app again, as the tests do)."""
    global _active
    if _active is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    tracing, _active = _active, None
    RedisInstrumentor().uninstrument()
    HTTPXClientInstrumentor().uninstrument()
    tracing.provider.shutdown()
