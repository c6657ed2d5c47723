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
from chainconsult.infra.cache import Cache, CachedQuery, CircuitState
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


# The probes' verdict is shared by every caller for a second: the endpoint is public, and a
# flood of health checks must not become a flood of database and Redis round trips.
_SUMMARY: CachedQuery[dict[str, Any]] = CachedQuery(
    "health.summary", dict[str, Any], ttl=1.0, local_only=True
)


async def _summary(state: Any) -> dict[str, Any]:
    db_ok, redis_ok = await asyncio.gather(
        database_reachable(state.engine), redis_reachable(state.redis)
    )
    cache: Cache | None = getattr(state, "cache", None)
    notes = []
    if not db_ok:
        status = "fail"
        notes.append("database unreachable")
    elif redis_ok is not True or (cache is not None and cache.degraded):
        status = "warn"
        if redis_ok is None:
            notes.append("redis not configured")
        elif not redis_ok or (cache is not None and cache.circuit is CircuitState.open):
            notes.append("redis unreachable")
        else:
            notes.append("cache invalidation channel reconnecting")
        notes.append("using in-process memory for cache and rate limits")
    else:
        status = "pass"
    return {"status": status, "notes": notes}


@router.get("/api/health", response_class=HealthResponse, summary="Brief health")
async def brief_health(request: Request) -> Response:
    """`pass`, `warn` (degraded: Redis missing or failing, memory fallback in use) or `fail`
    (503). The verdict is at most one second old."""
    state = request.app.state
    summary = await _SUMMARY.get(getattr(state, "cache", None), load=lambda: _summary(state))
    status = summary["status"]
    body = {
        "status": status,
        "version": __version__.split(".")[0],
        "releaseId": __version__,
        "serviceId": "chainconsult",
        "description": "chainconsult API",
        "uptime": round(time.monotonic() - state.started_monotonic, 3),
        "notes": summary["notes"],
    }
    return HealthResponse(body, status_code=503 if status == "fail" else 200)


@router.get("/livez", response_class=HealthResponse, summary="Liveness")
async def livez() -> Response:
    """The process answers; nothing else is checked."""
    return HealthResponse({"status": "pass"})


@router.get("/readyz", response_class=HealthResponse, summary="Readiness")
async def readyz(request: Request) -> Response:
    """The database answers: route traffic here."""
    if await database_reachable(request.app.state.engine):
        return HealthResponse({"status": "pass"})
    return HealthResponse({"status": "fail", "notes": ["database unreachable"]}, status_code=503)
