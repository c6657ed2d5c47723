"""The server span of each HTTP request, named by route template, as a pure ASGI middleware
(installed only when tracing is on). Cheaper than opentelemetry-instrumentation-asgi, which
adds two internal spans per response and parses every header; the attributes are the stable
HTTP semantic conventions' required ones, set in one call when the response is done. A
request the sampler leaves out costs the sampler's decision and a context switch, nothing
more; probes and metric scrapes are not traced (docs/decisions/0042-tracing-cost.md)."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.request_state import request_state

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

    def __init__(self, app: ASGIApp, *, tracer: Tracer) -> None:
        # Imported here: the logging set-up imports this package, and `serve` must not load
        # the metrics library (which it brings in) before its workers fork.
        from chainconsult.infra.monitoring.http_metrics import PROBE_ROUTES, route_template

        self.app = app
        self.tracer = tracer
        self.route_template = route_template
        # Polled every few seconds by machines: a trace of each would be noise, at a cost.
        self.untraced = PROBE_ROUTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        # start_span and attach rather than start_as_current_span: its context manager and
        # use_span wrapper cost as much again as the unsampled span itself.
        span = self.tracer.start_span(method, context=_parent(scope), kind=SpanKind.SERVER)
        token = otel_context.attach(set_span_in_context(span))
        try:
            if span.is_recording():
                await self._recorded(span, scope, receive, send)
            else:  # a request the sampler left out: children and jobs still see its context
                await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
            span.end()

    async def _recorded(self, span: Span, scope: Scope, receive: Receive, send: Send) -> None:
        entry_root_path = scope.get("root_path", "")
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            method = scope["method"]
            route = self.route_template(scope, entry_root_path=entry_root_path)
            span.update_name(f"{method} {route}")
            # One call: the SDK takes the span's lock and checks the attributes once.
            span.set_attributes(
                {
                    "http.request.method": method,
                    "url.path": scope["path"],
                    "http.route": route,
                    "http.response.status_code": status,
                    "chainconsult.request_id": request_state(scope).request_id or "",
                }
            )
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
