"""Operator surfaces: detailed health (`POST /api/health`), `/metrics`, the alert API and the
`/status` dashboard. Detailed health and /metrics are for TRUSTED_IPS or admins; alerts and the
dashboard for admins."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from chainconsult.accounts.auth import AdminAccount
from chainconsult.accounts.mfa import ensure_admin
from chainconsult.config import settings_of
from chainconsult.errors import Forbidden, ServiceUnavailable, Unauthorized
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.health.endpoints import HealthResponse, failing, http_status
from chainconsult.infra.health.formats import draft_body
from chainconsult.infra.monitoring.exposition import CONTENT_TYPE, render_metrics
from chainconsult.infra.monitoring.lifespan import Monitoring
from chainconsult.infra.resources import resources_of
from chainconsult.operations.access import OperatorAccess, resolve_caller
from chainconsult.operations.schemas import AlertList, AlertResponse, AlertStatusFilter
from chainconsult.operations.service import AlertService, dashboard_data
from chainconsult.web import templates

router = APIRouter(tags=["operations"])
# Mounted under /api/v2 with the other v2 routers (app.API_V2_ROUTERS).
admin_router = APIRouter(prefix="/admin", tags=["admin"])


def monitoring_of(request: Request) -> Monitoring:
    return resources_of(request).monitoring


@router.post(
    "/api/health",
    response_class=HealthResponse,
    summary="Detailed health (admins and TRUSTED_IPS)",
    dependencies=[OperatorAccess],
    responses={
        401: {"description": "No credentials and not from TRUSTED_IPS."},
        403: {"description": "Logged in, but not an admin."},
        503: {
            "description": "At least one check fails (the health document), or the credentials "
            "cannot be checked while the database is down (a problem).",
            "content": {
                **failing("")[503]["content"],
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
            },
        },
    },
)
async def detailed_health(request: Request) -> Response:
    """Every check of `GET /api/v2/health` with its value and details (response times, pool
    numbers, per-queue depth, disk free: the public GET shows statuses only), plus the active
    alerts, the slowest recent queries and this node's identity.
    Works while the database is down (alerts then come from the evaluator's memory)."""
    monitoring = monitoring_of(request)
    report = await monitoring.health.report()
    uptime = time.monotonic() - resources_of(request).started_monotonic
    body = draft_body(report, uptime_s=uptime, detailed=True)
    body["alerts"] = [
        {
            "id": str(alert.id),
            "rule": alert.rule,
            "severity": alert.severity.value,
            "summary": alert.summary,
            "first_seen_at": alert.first_seen_at.isoformat(),
            "acknowledged": alert.acknowledged_at is not None,
        }
        for alert in monitoring.evaluator.store.active.values()
    ]
    traffic = monitoring.evaluator.cluster_traffic
    p95 = traffic.latency_quantile(0.95)
    body["traffic"] = {
        "window_seconds": round(traffic.seconds, 1),
        "requests_per_second": round(traffic.request_rate, 3),
        "error_rate": traffic.error_rate,
        "p95_ms": round(p95 * 1000, 1) if p95 is not None else None,
        "cache_hit_rate": traffic.cache_hit_rate,
    }
    slow: list[dict[str, Any]] = []
    if report.database_ok and monitoring.providers.slow_queries is not None:
        try:
            slow = await monitoring.providers.slow_queries(5)
        except Exception:
            slow = []
    caches: dict[str, float] = {}
    if monitoring.providers.cache_hit_rates is not None:
        try:
            caches = await asyncio.wait_for(monitoring.providers.cache_hit_rates(), 1.0)
        except Exception:
            caches = {}
    body["cache_hit_rates"] = caches
    body["slow_queries"] = [
        {**row, "at": str(row["at"]) if row.get("at") else None} for row in slow
    ]
    body["node"] = monitoring.evaluator.node
    return HealthResponse(body, status_code=http_status(report))


@router.get(
    "/metrics",
    summary="Prometheus metrics (admins and TRUSTED_IPS)",
    response_class=Response,
    dependencies=[OperatorAccess],
    responses={
        200: {"content": {CONTENT_TYPE: {}}},
        401: {"description": "No credentials and not from TRUSTED_IPS."},
        403: {"description": "Logged in, but not an admin."},
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: every `chainconsult_*` metric summed over all server workers of
    this host, per-worker process gauges and host gauges."""
    settings = settings_of(request)
    return Response(render_metrics(settings.app.data_dir), media_type=CONTENT_TYPE)


@admin_router.get("/alerts", response_model=AlertList, summary="Alerts")
async def list_alerts(
    admin: AdminAccount,
    session: DbSession,
    status: Annotated[
        AlertStatusFilter, Query(description="firing (default), resolved or all.")
    ] = AlertStatusFilter.firing,
    severity: Annotated[
        str | None,
        Query(pattern="^(critical|high|medium|low)$", description="Only this severity."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="From `next_cursor`.")] = None,
) -> AlertList:
    """Alerts newest first: firing ones by default."""
    return await AlertService(session).page(
        status=None if status is AlertStatusFilter.all else status.value,
        severity=severity,
        limit=limit,
        cursor=cursor,
    )


@admin_router.post("/alerts/{alert_id}/ack", response_model=AlertResponse, summary="Acknowledge")
async def acknowledge_alert(
    alert_id: uuid.UUID, request: Request, admin: AdminAccount, session: DbSession
) -> AlertResponse:
    """Record that an admin is on it (idempotent). A paged alert is acknowledged in PagerDuty
    too. Cookie sessions must send X-CSRF-Token."""
    alert = await AlertService(session).acknowledge(
        alert_id=alert_id, account_id=admin.account_id, monitoring=monitoring_of(request)
    )
    return AlertResponse.model_validate(alert)


def _page(request: Request, name: str, status_code: int, **context: Any) -> HTMLResponse:
    response: HTMLResponse = templates.TemplateResponse(
        request, name, context, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


@router.get(
    "/status",
    response_class=HTMLResponse,
    summary="Status dashboard (admins)",
    # A page answers its refusals as pages (the login form), not as problems; only what the
    # middleware answers before the page runs (429, a crash) is a problem.
    responses={
        401: _html("Not logged in, or the login has ended: the login form."),
        403: _html("Logged in without an admin account: the login form, saying so."),
        503: _html("The database is unreachable, so no login can be checked: a page saying so."),
    },
)
async def status_page(request: Request, session: DbSession) -> Response:
    """The HTML dashboard: health checks, traffic, alerts with acknowledge buttons, failed
    jobs, slow queries. Without an admin login it answers with the login form (401/403); while
    the database is down, with a page saying so (503)."""
    try:
        principal = await resolve_caller(request, session)
    except ServiceUnavailable as exc:
        return _page(request, "login.html", 503, message=exc.detail)
    except Unauthorized:
        principal = None
    if principal is None:
        page = _page(request, "login.html", 401, message=None)
        # A 401 names its scheme (RFC 9110); the form below logs in and sets the cookie.
        page.headers["WWW-Authenticate"] = 'Bearer realm="chainconsult"'
        return page
    if not principal.is_admin:
        return _page(request, "login.html", 403, message="This page needs an admin account.")
    try:
        ensure_admin(principal)
    except Forbidden as refused:
        return _page(request, "login.html", 403, message=refused.detail)
    data = await dashboard_data(session, monitoring_of(request))
    return _page(request, "status.html", 200, data=data, principal=principal)


@router.get("/status/panels", response_class=HTMLResponse, include_in_schema=False)
async def status_panels(request: Request, admin: AdminAccount, session: DbSession) -> Response:
    """The dashboard's panels alone, fetched by the page every few seconds."""
    data = await dashboard_data(session, monitoring_of(request))
    return _page(request, "_panels.html", 200, data=data)
