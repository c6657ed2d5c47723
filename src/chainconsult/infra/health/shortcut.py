"""Answers the health probes (GET and HEAD of /livez, /readyz, /api/health, /api/v1/health,
/api/v2/health) with their own endpoint functions, without FastAPI's routing.

Load balancers and monitors call these more than anything else, and on a probe FastAPI's
route matching and request handling cost more than the probe itself (more than half of
/livez's CPU in process: docs/decisions/0007-probe-shortcut.md). The answer is the
route's own: the same function builds it, and the FastAPI routes stay for the OpenAPI
document and as the way every other method takes (a POST to /api/health, the detailed report,
never reaches this). Installed innermost, like the cached-read shortcut: metrics, request id
and logging, security headers, CORS, versions and the rate limit's probe exemption wrap it
exactly as they wrap the routes, and the metrics label is the route's template."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from chainconsult.infra.monitoring.http_metrics import RouteLabel

ProbeEndpoint = Callable[[Request], Awaitable[Response]]


class ProbeShortcut:
    def __init__(self, app: ASGIApp, *, probes: Mapping[str, ProbeEndpoint]) -> None:
        self.app = app
        self._probes = {path: (endpoint, RouteLabel(path)) for path, endpoint in probes.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            probe = self._probes.get(scope["path"])
            if probe is not None:
                endpoint, label = probe
                scope["route"] = label
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
