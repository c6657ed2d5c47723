"""Brief health, liveness and readiness. The brief report is public and cheap: each probe has
a short timeout, so a hung dependency makes the answer `fail`, never a hung health check."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from chainconsult import __version__
from chainconsult.infra.db.pool import pool_status
from chainconsult.infra.http import JSONResponse

HEALTH_JSON = "application/health+json"
PROBE_TIMEOUT_S = 1.0

router = APIRouter(tags=["health"])


class HealthResponse(JSONResponse):
    media_type = HEALTH_JSON


async def database_reachable(engine: AsyncEngine) -> bool:
    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
    except Exception:
        return False
    return True


async def redis_reachable(client: Any) -> bool | None:
    """None when Redis is not configured."""
    if client is None:
        return None
    try:
        await asyncio.wait_for(client.ping(), PROBE_TIMEOUT_S)
    except Exception:
        return False
    return True


@router.get("/api/health", response_class=HealthResponse, summary="Brief health")
async def brief_health(request: Request) -> Response:
    """`pass`, `warn` (degraded: Redis missing, memory fallback in use) or `fail` (503)."""
    state = request.app.state
    db_ok, redis_ok = await asyncio.gather(
        database_reachable(state.engine), redis_reachable(state.redis)
    )
    notes = []
    if not db_ok:
        status = "fail"
        notes.append("database unreachable")
    elif redis_ok is not True:
        status = "warn"
        notes.append("redis not configured" if redis_ok is None else "redis unreachable")
        notes.append("using in-process memory for cache and rate limits")
    else:
        status = "pass"
    body = {
        "status": status,
        "version": __version__.split(".")[0],
        "releaseId": __version__,
        "serviceId": "chainconsult",
        "description": "chainconsult API",
        "uptime": round(time.monotonic() - state.started_monotonic, 3),
        "notes": notes,
    }
    return HealthResponse(body, status_code=503 if status == "fail" else 200)


@router.get("/livez", response_class=HealthResponse, summary="Liveness")
async def livez() -> Response:
    """The process answers; nothing else is checked."""
    return HealthResponse({"status": "pass"})


@router.get("/readyz", response_class=HealthResponse, summary="Readiness")
async def readyz(request: Request) -> Response:
    """The database answers and the connection pool is not stuck exhausted: route traffic
    here. A pool with no free connection for longer than DATABASE_CONNECTION_TIMEOUT fails
    (requests are timing out); a briefly saturated one passes without a probe of its own."""
    engine = request.app.state.engine
    pool = pool_status(engine)
    if pool.exhausted:
        notes = [f"database pool exhausted for {pool.exhausted_seconds:.1f}s"]
        return HealthResponse({"status": "fail", "notes": notes}, status_code=503)
    if pool.exhausted_seconds > 0:
        return HealthResponse({"status": "pass", "notes": ["database pool busy"]})
    if await database_reachable(engine):
        return HealthResponse({"status": "pass"})
    return HealthResponse({"status": "fail", "notes": ["database unreachable"]}, status_code=503)
