"""The application factory. Nothing here connects anywhere at import time: the lifespan opens
the process's ``Resources`` (engine, Redis pool, cache, limiter, ...: process.py) from the
settings it was given, and closes them on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import structlog
from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from chainconsult import __version__
from chainconsult.accounts.auth import login_expiry
from chainconsult.accounts.email_page import router as email_page
from chainconsult.accounts.endpoints import router as accounts_router
from chainconsult.accounts.identity_pages import router as identity_pages
from chainconsult.accounts.lifecycle_endpoints import router as lifecycle_router
from chainconsult.accounts.lifecycle_pages import router as lifecycle_pages
from chainconsult.accounts.mfa_endpoints import router as mfa_router
from chainconsult.accounts.pages import router as accounts_pages
from chainconsult.accounts.siwe_endpoints import router as siwe_router
from chainconsult.accounts.siwe_endpoints import wallets_router
from chainconsult.accounts.throttle import LoginGate
from chainconsult.accounts.visit import PageSources, use_page_sources
from chainconsult.admin.routers import ADMIN_API_ROUTERS, ADMIN_PAGE_ROUTERS
from chainconsult.api_versions import V1_ROUTERS
from chainconsult.applications.endpoints import router as applications_router
from chainconsult.applications.pages import router as applications_pages
from chainconsult.applications.service import latest_application
from chainconsult.config import Settings, load_settings
from chainconsult.conversations.endpoints import router as conversations_router
from chainconsult.conversations.events import router as events_router
from chainconsult.conversations.pages import router as conversations_pages
from chainconsult.errors import install_problem_handlers
from chainconsult.escrow.endpoints import milestones_router
from chainconsult.escrow.endpoints import projects_router as escrow_router
from chainconsult.escrow.pages import router as escrow_pages
from chainconsult.experts.endpoints import router as experts_router
from chainconsult.experts.pages import router as experts_pages
from chainconsult.infra.docs_pages import (
    DOCS_ASSETS_DIR,
    DOCS_ASSETS_PATH,
    V2_DOCS_PATH,
    swagger_page,
)
from chainconsult.infra.health.endpoints import router as health_router
from chainconsult.infra.heap import startup_objects_frozen
from chainconsult.infra.http import JSONResponse
from chainconsult.infra.monitoring.logging import configure_logging, flush_logs
from chainconsult.infra.security.passwords import use_parameters as use_password_hash_parameters
from chainconsult.infra.tracing import start_tracing, stop_tracing
from chainconsult.middleware import install_middleware
from chainconsult.notifications.endpoints import router as notifications_router
from chainconsult.notifications.pages import router as notifications_pages
from chainconsult.notifications.service import count_unread
from chainconsult.operations.endpoints import router as operations_router
from chainconsult.privacy.endpoints import router as privacy_router
from chainconsult.privacy.pages import router as privacy_pages
from chainconsult.process import open_resources
from chainconsult.projects.endpoints import router as projects_router
from chainconsult.projects.pages import router as projects_pages
from chainconsult.proposals.endpoints import router as proposals_router
from chainconsult.proposals.pages import router as proposals_pages
from chainconsult.web import PAGE_STATIC_PATH, STATIC_DIR, STATIC_PATH

log = structlog.get_logger(__name__)


API_V2_PREFIX = "/api/v2"
API_V2_ROUTERS = (
    accounts_router,
    mfa_router,
    siwe_router,
    wallets_router,
    lifecycle_router,
    experts_router,
    applications_router,
    projects_router,
    proposals_router,
    notifications_router,
    conversations_router,
    events_router,
    privacy_router,
    escrow_router,
    milestones_router,
    *ADMIN_API_ROUTERS,
)
"""Included straight into the app, each under the prefix, not through a /api/v2 router of
their own: FastAPI (0.165) matches an included router's routes again at every level of
nesting on each request, and the extra level cost 13-24 % of the instructions of a request
refused at its auth dependency (docs/decisions/0008-flat-routers-and-auth-dependencies.md)."""


PAGE_ROUTERS = (
    experts_pages,
    accounts_pages,
    identity_pages,
    lifecycle_pages,
    email_page,
    privacy_pages,
    applications_pages,
    projects_pages,
    proposals_pages,
    notifications_pages,
    conversations_pages,
    escrow_pages,
    *ADMIN_PAGE_ROUTERS,
)
"""The server-rendered pages (DESIGN.md, "Web pages"), after the API's routes."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.app.log_level)
    # Tracing from the OTEL_* variables only (docs/tracing.md), before the engine is built.
    start_tracing()
    use_password_hash_parameters(settings.password_hash)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with open_resources(settings) as resources:
                app.state.resources = resources
                # Event streams end with their login (infra cannot ask accounts itself).
                resources.live.check_login = partial(login_expiry, app)
                log.info(
                    "started",
                    version=__version__,
                    environment=settings.app.environment.value,
                    redis=resources.redis is not None,
                )
                with startup_objects_frozen():
                    yield
        finally:
            stop_tracing()
            log.info("stopped")
            flush_logs()

    app = FastAPI(
        # The platform's telemetry is its Prometheus metrics and JSON logs; FastAPI's native
        # OpenTelemetry (never configured here) would still look for providers on every
        # request, about 3 % of a cached read's CPU
        # (docs/decisions/0009-no-idle-work-per-request.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="chainconsult",
        version=__version__,
        summary="Backend of a blockchain consultant marketplace.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        openapi_url="/api/v2/openapi.json",
        # The docs page is ours (docs_pages): FastAPI's would load Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    # Read before the lifespan runs (the middleware is built from them), so not a resource.
    app.state.settings = settings
    app.state.login_gate = LoginGate(settings.login_throttle.database_slots)
    use_page_sources(
        app,
        PageSources(unread_notifications=count_unread, expert_application=latest_application),
    )
    install_problem_handlers(app)
    app.include_router(health_router)
    for router in API_V2_ROUTERS:
        app.include_router(router, prefix=API_V2_PREFIX)
    for router in V1_ROUTERS:
        app.include_router(router)
    app.include_router(operations_router)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="status-static")
    app.mount(PAGE_STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")

    @app.get(V2_DOCS_PATH, include_in_schema=False)
    async def v2_docs(request: Request) -> HTMLResponse:
        return swagger_page(
            title=f"{app.title} API v2", root_path=request.scope.get("root_path", "")
        )

    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-static")
    install_middleware(app, settings)
    return app
