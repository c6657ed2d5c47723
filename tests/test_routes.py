"""How the routes are put together."""

from __future__ import annotations

from chainconsult.app import API_V2_PREFIX, create_app
from chainconsult.config import Settings


def test_api_routers_are_included_one_level_deep(settings: Settings) -> None:
    """FastAPI matches an included router's routes again at each level of nesting on every
    request: the v2 routers sit straight in the app (bench/RESULTS.md, "Flat v2 routers")."""
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
