"""The server span of each HTTP request, named by route template, as a pure ASGI middleware
(installed only when tracing is on). Cheaper than opentelemetry-instrumentation-asgi, which
adds two internal spans per response and parses every header; the attributes are the stable
HTTP semantic conventions' required ones. The span is recorded by ``SpanRecorder``: started
when the request comes, built once when the response is done. A request the sampler leaves
out costs the sampler's decision and a context switch, nothing more; probes and metric
scrapes are not traced (docs/decisions/0042-tracing-cost.md, 0045-lean-platform-spans.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanKind,
    Status,
    StatusCode,
    set_span_in_context,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from chainconsult.infra.request_state import request_state

# The SDK is loaded only when tracing starts (_setup), and this module with the package.
if TYPE_CHECKING:
    from chainconsult.infra.tracing._record import OpenSpan, SpanRecorder

_ERROR = Status(StatusCode.ERROR)
_UNSET = Status()

_PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


def _parent(scope: Scope) -> Context | None:
    """The caller's trace context, when it sent one (W3C traceparent by default)."""
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _PROPAGATION_HEADERS
    }
    return propagate.extract(carrier) if carrier else None


class TracingMiddleware:
    """Outside the request id layer, so that the access line and every log line of the
    request carry the span's trace id; the request id becomes an attribute once known."""

    def __init__(self, app: ASGIApp, *, recorder: SpanRecorder) -> None:
        # Imported here: the logging set-up imports this package, and `serve` must not load
        # the metrics library (which it brings in) before its workers fork.
        from chainconsult.infra.monitoring.http_metrics import PROBE_ROUTES, route_template

        self.app = app
        self.recorder = recorder
        self.route_template = route_template
        # Polled every few seconds by machines: a trace of each would be noise, at a cost.
        self.untraced = PROBE_ROUTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        span = self.recorder.start(scope["method"], SpanKind.SERVER, _parent(scope))
        # Children, jobs and log lines see its context, recorded or not.
        token = otel_context.attach(set_span_in_context(NonRecordingSpan(span.context)))
        try:
            if span.recording:
                await self._recorded(span, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)

    async def _recorded(self, span: OpenSpan, scope: Scope, receive: Receive, send: Send) -> None:
        entry_root_path = scope.get("root_path", "")
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            method = scope["method"]
            route = self.route_template(scope, entry_root_path=entry_root_path)
            state = request_state(scope)
            status = state.counted_status
            self.recorder.end(
                span,
                f"{method} {route}",
                SpanKind.SERVER,
                {
                    "http.request.method": method,
                    "url.path": scope["path"],
                    "http.route": route,
                    "http.response.status_code": status,
                    "chainconsult.request_id": state.request_id or "",
                },
                status=_ERROR if status >= 500 else _UNSET,
                error=error,
            )
