"""The v1 API surface, gathered from each domain's ``versions.py``, and its wiring into an
application. The one place that knows every domain's v1 routes, like app.py knows their
routers."""

from __future__ import annotations

from fastapi import FastAPI

from chainconsult.accounts.versions import V1_ROUTES as ACCOUNTS_V1
from chainconsult.config import Settings
from chainconsult.experts.versions import V1_ROUTER as EXPERTS_V1_ROUTER
from chainconsult.experts.versions import V1_ROUTES as EXPERTS_V1
from chainconsult.infra.versioning import (
    DOCS_PASSTHROUGH,
    ApiVersionMiddleware,
    V1Lifecycle,
    V1Surface,
    install_version_docs,
    render_guide,
)
from chainconsult.projects.versions import V1_ROUTER as PROJECTS_V1_ROUTER
from chainconsult.projects.versions import V1_ROUTES as PROJECTS_V1

V1_ROUTERS = (EXPERTS_V1_ROUTER, PROJECTS_V1_ROUTER)
"""The v1 layer's own routes (``V1Route.own_route``: numbered pages), hidden from every
document and reached only through the versioning middleware."""

V1_PASSTHROUGH: dict[str, str | None] = {
    # The v1 health format, owned by monitoring: served as it is, with the v1 headers.
    "/health": "/api/v2/health",
    **DOCS_PASSTHROUGH,
}


def v1_surface() -> V1Surface:
    return V1Surface.of([*ACCOUNTS_V1, *EXPERTS_V1, *PROJECTS_V1], V1_PASSTHROUGH)


def migration_guide() -> str:
    return render_guide(v1_surface())


def install_api_versions(app: FastAPI, settings: Settings) -> None:
    """Serve /api/v1 (derived from v2), /api/... by header, and the per-version documents.
    Add this middleware outside the body guard, so v1 errors from it carry the v1 headers."""
    surface = v1_surface()
    lifecycle = V1Lifecycle.from_settings(settings.versioning)
    install_version_docs(app, surface, lifecycle, migration_guide)
    app.add_middleware(
        ApiVersionMiddleware,
        surface=surface,
        lifecycle=lifecycle,
        max_body_bytes=settings.security.max_body_bytes,
    )
