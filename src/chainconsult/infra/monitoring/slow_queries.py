"""Recent slow statements for the dashboard and detailed health: the ``slow_query`` lines the
database layer logs (kept by LOG_TO_DATABASE), else the worst averages in pg_stat_statements
when the server has that extension."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_STATEMENTS_VIEW = text("SELECT to_regclass('pg_stat_statements') IS NOT NULL")
_SLOW_FROM_LOG = text(
    "SELECT created_at, context FROM log_entries WHERE event = 'slow_query' "
    "ORDER BY created_at DESC LIMIT :limit"
)
_SLOW_FROM_STATEMENTS = text(
    "SELECT query, calls, mean_exec_time, max_exec_time FROM pg_stat_statements "
    "WHERE mean_exec_time >= :threshold ORDER BY mean_exec_time DESC LIMIT :limit"
)


class SlowQueryLog:
    """Recent slow statements: the ``slow_query`` log lines kept by LOG_TO_DATABASE, else the
    worst averages in pg_stat_statements when the server has the extension."""

    def __init__(self, engine: AsyncEngine, *, threshold_ms: int) -> None:
        self.engine = engine
        self.threshold_ms = threshold_ms

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_SLOW_FROM_LOG, {"limit": limit})).all()
            found = [
                {
                    "sql": str(context.get("sql") or context.get("statement") or "?"),
                    "duration_ms": context.get("duration_ms"),
                    "at": created_at,
                }
                for created_at, context in rows
            ]
            if found or not (await conn.execute(_STATEMENTS_VIEW)).scalar():
                return found
            try:
                stats = (
                    await conn.execute(
                        _SLOW_FROM_STATEMENTS, {"threshold": self.threshold_ms, "limit": limit}
                    )
                ).all()
            except Exception:
                # The view exists but the library is not preloaded: nothing to read.
                return []
        return [
            {
                "sql": query,
                "duration_ms": round(mean, 1),
                "max_ms": round(worst, 1),
                "calls": calls,
                "at": None,
            }
            for query, calls, mean, worst in stats
        ]
