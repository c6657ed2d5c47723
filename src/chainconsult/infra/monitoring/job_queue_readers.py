"""Default job-queue readers over procrastinate's tables. Every statement is preceded by a
``to_regclass`` look-up, so the same code works before the job tables exist (it reports
"not installed") and after they are migrated in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.monitoring.providers import JobQueueStats

_TABLES = text(
    "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS jobs, "
    "to_regclass('procrastinate_events') IS NOT NULL AS events, "
    "to_regclass('procrastinate_workers') IS NOT NULL AS workers"
)
_DEPTH = text(
    "SELECT queue_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' GROUP BY queue_name"
)
# A job waits from when it became runnable: its scheduled time, else when it was deferred.
_OLDEST = text(
    "SELECT extract(epoch FROM now() - min(coalesce(j.scheduled_at, e.at))) "
    "FROM procrastinate_jobs j JOIN procrastinate_events e "
    "ON e.job_id = j.id AND e.type = 'deferred' "
    "WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())"
)
_FAILED_HOUR = text(
    "SELECT count(*) FROM procrastinate_events "
    "WHERE type = 'failed' AND at > now() - interval '1 hour'"
)
_HEARTBEAT = text(
    "SELECT extract(epoch FROM now() - max(last_heartbeat)) FROM procrastinate_workers"
)
_RECENT_FAILED = text(
    "SELECT j.id, j.task_name, j.queue_name, j.attempts, max(e.at) AS failed_at "
    "FROM procrastinate_jobs j JOIN procrastinate_events e "
    "ON e.job_id = j.id AND e.type = 'failed' "
    "WHERE j.status = 'failed' GROUP BY j.id ORDER BY failed_at DESC LIMIT :limit"
)


class ProcrastinateTables:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def stats(self) -> JobQueueStats:
        async with self.engine.connect() as conn:
            tables = (await conn.execute(_TABLES)).one()
            if not tables.jobs or not tables.events:
                return JobQueueStats(installed=False)
            depth = {str(q): int(n) for q, n in (await conn.execute(_DEPTH)).all()}
            oldest = (await conn.execute(_OLDEST)).scalar()
            failed = (await conn.execute(_FAILED_HOUR)).scalar() or 0
            heartbeat = (await conn.execute(_HEARTBEAT)).scalar() if tables.workers else None
        return JobQueueStats(
            installed=True,
            depth_by_queue=depth,
            oldest_age_s=float(oldest) if oldest is not None else None,
            failed_last_hour=int(failed),
            worker_heartbeat_age_s=float(heartbeat) if heartbeat is not None else None,
        )

    async def recent_failures(self, limit: int) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            tables = (await conn.execute(_TABLES)).one()
            if not tables.jobs or not tables.events:
                return []
            rows = (await conn.execute(_RECENT_FAILED, {"limit": limit})).mappings().all()
        return [
            {
                "id": row["id"],
                "task": row["task_name"],
                "queue": row["queue_name"],
                "attempts": row["attempts"],
                "at": row["failed_at"],
            }
            for row in rows
        ]
