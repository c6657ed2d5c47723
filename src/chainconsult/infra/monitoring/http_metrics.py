"""Counts and times every HTTP request by route template (``/api/v2/projects/{id}``), never
by raw path: one series per route, however many ids the clients send."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.monitoring.metrics import (
    http_request_duration_seconds,
    http_requests_total,
)

UNMATCHED_ROUTE = "unmatched"
"""Label of requests no route answered (404s for random paths, scanners)."""
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the route that served the request. Starlette's router stores the
    matched route in the scope; mounts (static files) report their mount path."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED_ROUTE
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Outermost middleware, so it sees the final status (including a 500 from the crash
    barrier or a 413 from the body guard) and the whole time spent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
            route = route_template(scope)
            http_requests_total.labels(method, route, str(status)).inc()
            http_request_duration_seconds.labels(method, route).observe(elapsed)
