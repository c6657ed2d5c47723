"""Counts and times every HTTP request by route template (``/api/v2/projects/{id}``), never
by raw path: one series per route, however many ids the clients send."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from chainconsult.infra.monitoring.metrics import (
    http_request_duration_seconds,
    http_requests_total,
)
from chainconsult.infra.request_state import request_state

UNMATCHED_ROUTE = "unmatched"
"""Label of requests no route answered (404s for random paths, scanners)."""
PROBE_ROUTES = frozenset(
    {"/livez", "/readyz", "/api/health", "/api/v1/health", "/api/v2/health", "/metrics"}
)
"""Routes that load balancers, monitors and scrapers poll. They are counted like any other
route, but the traffic window behind the alert rules and the dashboard leaves them out: a
readiness probe answering 503 on a sick node is the probe doing its job, not a failed user
request, and a monitor polling every second would otherwise dilute or inflate the error rate."""
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class RouteLabel:
    """Left in ``scope["route"]`` by a layer that answers without routing (the shortcuts), so
    its answers are counted under the template of the route that would have answered."""

    path_format: str


def route_template(scope: Scope, *, entry_root_path: str = "") -> str:
    """The template of the route that served the request, read from what routing left in the
    scope once the app has run:

    - FastAPI (0.165 and later) resolves routes of included routers through an "effective
      route context" whose ``path_format`` is the full template (``/api/v2/auth/login``); the
      route object itself only knows its path inside its router (``/auth/login``). This is
      what FastAPI's own telemetry reports as ``http.route``.
    - A plain Starlette route leaves itself in ``scope["route"]``.
    - A mount (static files) extends ``root_path``: everything below it is one template.
    """
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        context = fastapi_scope.get("effective_route_context")
        template = getattr(context, "path_format", None)
        if isinstance(template, str) and template:
            return template
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str) and template:
        return template
    root_path = scope.get("root_path", "")
    if isinstance(root_path, str) and root_path != entry_root_path:
        return f"{root_path.removeprefix(entry_root_path)}/{{path}}"
    return UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Outermost middleware, so it sees the final status (including a 500 from the crash
    barrier or a 413 from the body guard) and the whole time spent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled children, looked up once per (method, route, status): labels() costs
        # more than inc() and observe() together. Bounded: methods and routes are from fixed
        # sets (route templates, never raw paths) and statuses are three digits.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                http_requests_total.labels(method, route, str(status)),
                http_request_duration_seconds.labels(method, route),
            )
            self._children[key] = children
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        entry_root_path = scope.get("root_path", "")
        try:
            await self.app(scope, receive, send)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
            route = route_template(scope, entry_root_path=entry_root_path)
            status = request_state(scope).counted_status
            requests, duration = self._series(method, route, status)
            requests.inc()
            duration.observe(elapsed)
