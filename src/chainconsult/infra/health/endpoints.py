"""Public health: brief (`GET /api/health`), the v1 and v2 shapes, liveness and readiness.
All read one cached probe (see checks.py), so they are cheap under load and never hang on a
sick dependency. The detailed report for operators is in `chainconsult.operations`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from chainconsult.infra.db.pool import pool_status
from chainconsult.infra.health.checks import HealthMonitor, HealthReport
from chainconsult.infra.health.formats import draft_body, v1_body
from chainconsult.infra.http import JSONResponse
from chainconsult.infra.resources import resources_of

HEALTH_JSON = "application/health+json"
EMBEDDED_DOWN = "embedded database down, restarts failing"

router = APIRouter(tags=["health"])


class HealthResponse(JSONResponse):
    media_type = HEALTH_JSON


def failing(description: str, media_type: str = HEALTH_JSON) -> dict[int | str, Any]:
    """The documented 503 of a health route: the health document itself, not a problem."""
    content = {media_type: {"schema": {"type": "object"}}}
    return {503: {"description": description, "content": content}}


def health_monitor(request: Request) -> HealthMonitor:
    return resources_of(request).monitoring.health


def uptime_of(request: Request) -> float:
    return time.monotonic() - resources_of(request).started_monotonic


def http_status(report: HealthReport) -> int:
    return 503 if report.status == "fail" else 200


@router.get(
    "/api/health",
    response_class=HealthResponse,
    summary="Brief health",
    responses=failing("A required dependency (the database) is failing."),
)
async def brief_health(request: Request) -> Response:
    """`pass`, `warn` (degraded: Redis missing, memory fallback in use) or `fail` (503), with
    version and uptime. Public and cached for a second or two."""
    report = await health_monitor(request).report()
    body = draft_body(report, uptime_s=uptime_of(request), with_checks=False)
    return HealthResponse(body, status_code=http_status(report))


@router.get(
    "/api/v2/health",
    response_class=HealthResponse,
    summary="Health with checks (draft-inadarei-api-health-check)",
    responses=failing("At least one check fails."),
)
async def health_v2(request: Request) -> Response:
    """`application/health+json` as in draft-inadarei-api-health-check: `status`
    pass/warn/fail (HTTP 200/200/503) and `checks` keyed `component:measurement`:
    postgres:responseTime, postgres:connections, redis:responseTime, cache:hitRate,
    jobs:queueDepth, jobs:oldestAge, jobs:failedLastHour, jobs:workerHeartbeatAge,
    process:memory, process:cpu, disk:utilization. Public, so each check has its status only;
    their values are in the detailed report (`POST /api/health`, admins and TRUSTED_IPS)."""
    report = await health_monitor(request).report()
    return HealthResponse(
        draft_body(report, uptime_s=uptime_of(request)), status_code=http_status(report)
    )


@router.get(
    "/api/v1/health",
    summary="Health (v1 shape)",
    deprecated=True,
    responses=failing("The service is unhealthy.", "application/json"),
)
async def health_v1(request: Request) -> Response:
    """Deprecated v1 shape: `{status: healthy|degraded|unhealthy, timestamp, services{...}}`,
    each service with its state only (numbers: `POST /api/health`)."""
    report = await health_monitor(request).report()
    return JSONResponse(
        v1_body(report, uptime_s=uptime_of(request)), status_code=http_status(report)
    )


@router.get(
    "/livez",
    response_class=HealthResponse,
    summary="Liveness",
    responses=failing("The embedded PostgreSQL cannot be restarted: restart."),
)
async def livez(request: Request) -> Response:
    """The process answers; no dependency is checked, except in `serve`'s embedded mode: an
    embedded PostgreSQL that stays down longer than EMBEDDED_POSTGRES_MAX_DOWN_SECONDS while
    `serve` keeps restarting it fails (503), so that whatever runs `serve` restarts it."""
    embedded = health_monitor(request).embedded
    if embedded is not None and embedded.gave_up():
        return HealthResponse({"status": "fail", "notes": [EMBEDDED_DOWN]}, 503)
    return HealthResponse({"status": "pass"})


@router.get(
    "/readyz",
    response_class=HealthResponse,
    summary="Readiness",
    responses=failing("Database unreachable or pool exhausted: route elsewhere."),
)
async def readyz(request: Request) -> Response:
    """Route traffic here: the database answers (from the cached probe) and the connection
    pool is not stuck exhausted (read live: no I/O). A pool whose callers wait longer than
    DATABASE_CONNECTION_TIMEOUT fails; a briefly saturated one passes, noted as busy."""
    report = await health_monitor(request).report()
    pool = pool_status(resources_of(request).engine)
    if not report.database_ok:
        return HealthResponse({"status": "fail", "notes": ["database unreachable"]}, 503)
    if pool.exhausted:
        return HealthResponse({"status": "fail", "notes": ["database pool exhausted"]}, 503)
    if pool.exhausted_seconds > 0:
        return HealthResponse({"status": "pass", "notes": ["database pool busy"]})
    return HealthResponse({"status": "pass"})


PROBES: dict[str, Callable[[Request], Awaitable[Response]]] = {
    "/livez": livez,
    "/readyz": readyz,
    "/api/health": brief_health,
    "/api/v1/health": health_v1,
    "/api/v2/health": health_v2,
}
"""The GET probes by path, for the ProbeShortcut (shortcut.py): the very functions of the
routes above."""
