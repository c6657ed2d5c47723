"""The API app plus one bench-only route that reports this process's cache statistics, so a
benchmark can compute the hit rate of exactly the requests it measured.

    uvicorn bench.cache_app:create_app --factory"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from chainconsult.app import create_app as create_api_app
from chainconsult.infra.resources import resources_of


def create_app() -> FastAPI:
    app = create_api_app()

    @app.get("/bench/cache-stats", include_in_schema=False)
    async def cache_stats(request: Request) -> dict[str, Any]:
        report: dict[str, Any] = resources_of(request).cache.report()
        return report

    return app
