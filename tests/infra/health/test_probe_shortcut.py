"""The ProbeShortcut: GET and HEAD of the health probes are answered without FastAPI's routing,
and the answers cannot be told apart from the routes' (status, headers, body shape, metrics
label); every other method on those paths still goes to the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from httpx import AsyncClient
from prometheus_client import REGISTRY
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.health.endpoints import PROBES
from chainconsult.infra.health.endpoints import router as health_router
from chainconsult.infra.health.shortcut import ProbeShortcut
from tests.helpers import serving

PER_RESPONSE = {"date", "x-request-id", "content-length"}
VOLATILE = {"uptime", "uptime_seconds", "timestamp", "time", "observedValue", "response_time_ms"}


class RoutingSpy:
    """Innermost: sees exactly the requests that reach FastAPI's routing."""

    def __init__(self, app: ASGIApp, *, seen: list[tuple[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


@asynccontextmanager
async def spied(
    settings: Settings, *, shortcut: bool
) -> AsyncIterator[tuple[AsyncClient, list[tuple[str, str]]]]:
    app: FastAPI = create_app(settings)
    if not shortcut:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ProbeShortcut]
    seen: list[tuple[str, str]] = []
    app.user_middleware.append(Middleware(RoutingSpy, seen=seen))
    async with serving(app) as client:
        yield client, seen


def shape(value: Any) -> Any:
    """The body without what changes from one answer to the next (uptime, clocks)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return value


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in PER_RESPONSE)
    body = shape(response.json()) if response.content else None
    return response.status_code, headers, body


def probe_count(route: str) -> float:
    labels = {"method": "GET", "route": route, "status": "200"}
    return REGISTRY.get_sample_value("chainconsult_http_requests_total", labels) or 0.0


async def test_probes_skip_routing_and_answer_as_the_routes_do(settings: Settings) -> None:
    async with (
        spied(settings, shortcut=True) as (fast, fast_seen),
        spied(settings, shortcut=False) as (routed, routed_seen),
    ):
        for path in PROBES:
            for method in ("GET", "HEAD"):
                counted = probe_count(path)
                ours = await fast.request(method, path)
                theirs = await routed.request(method, path)

                assert ours.status_code == 200, (method, path, ours.text)
                assert comparable(ours) == comparable(theirs), (method, path)
                if method == "GET":
                    assert probe_count(path) == counted + 2, path  # both apps, one label
        assert fast_seen == []
        assert sorted(routed_seen) == sorted(("GET", path) for path in PROBES for _ in "ab")


async def test_other_methods_and_paths_still_go_to_the_routes(settings: Settings) -> None:
    async with spied(settings, shortcut=True) as (client, seen):
        detailed = await client.post("/api/health")
        slash = await client.get("/livez/")

    assert detailed.status_code == 401
    assert ("POST", "/api/health") in seen
    assert ("GET", "/livez/") in seen
    assert slash.status_code in {307, 404}


def test_the_probes_are_the_routes_functions() -> None:
    routed = {
        route.path: route.endpoint
        for route in health_router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    }
    assert routed == PROBES
