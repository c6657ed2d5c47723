"""How the routes are put together: FastAPI (0.165) pays a fixed CPU cost per level of router
nesting and per level of a dependency tree on every request, so both are kept flat
(docs/decisions/0008-flat-routers-and-auth-dependencies.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from chainconsult.app import API_V2_PREFIX, create_app
from chainconsult.config import Settings
from chainconsult.web.routing import PageRoute


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, PageRoute):
            # Pages share some paths with the API's routes inside their routers
            # (/admin/audit-log); they are not the API.
            continue
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def test_api_routers_are_included_one_level_deep(settings: Settings) -> None:
    app = create_app(settings)
    included = [route for route in app.router.routes if hasattr(route, "original_router")]
    nested = [
        route
        for route in included
        if any(hasattr(child, "original_router") for child in route.original_router.routes)
    ]

    assert len(included) > 10
    assert nested == []
    paths = app.openapi()["paths"]
    assert f"{API_V2_PREFIX}/auth/me" in paths
    assert f"{API_V2_PREFIX}/projects/{{project_id}}/proposals" in paths


def test_the_callers_dependency_reads_the_credentials_itself(settings: Settings) -> None:
    """CurrentAccount, OptionalAccount and AdminAccount each depend only on the bearer and
    cookie schemes (which keep the OpenAPI security entries), never on one another."""
    routes = {
        (route.path, method): route
        for route in _api_routes(create_app(settings).router.routes)
        for method in route.methods
    }
    for key in [
        ("/auth/me", "GET"),
        ("/projects/{project_id}/proposals", "POST"),
        ("/admin/audit-log", "GET"),
    ]:
        (caller,) = [d for d in routes[key].dependant.dependencies if d.dependencies]
        assert sorted(type(d.call).__name__ for d in caller.dependencies) == [
            "APIKeyCookie",
            "HTTPBearer",
        ], key
        assert all(not d.dependencies for d in caller.dependencies), key
