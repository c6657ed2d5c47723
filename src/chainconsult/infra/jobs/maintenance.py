"""Housekeeping tasks: re-queue jobs of dead workers, purge rows past retention, ANALYZE the
hot tables, delete old finished jobs. Their schedules are set in chainconsult.schedules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from procrastinate import JobContext
from sqlalchemy import ColumnClause, ColumnElement, Table, delete, literal_column, select, text

from chainconsult.infra.jobs.job_app import task
from chainconsult.infra.jobs.queues import Queue
from chainconsult.infra.jobs.resources import job_transaction, resources
from chainconsult.infra.settings.job_queue import RetentionSettings

log = structlog.get_logger("chainconsult.jobs")

PURGE_BATCH = 5000
"""Rows deleted per statement, so a large backlog never holds long locks."""


@dataclass(frozen=True, slots=True)
class PurgeRule:
    """Rows of ``table`` matching ``expired(now, retention)`` are deleted by the nightly
    purge. One rule per kind of data; adding a table is adding one rule."""

    name: str
    table: Table
    expired: Callable[[dt.datetime, RetentionSettings], ColumnElement[bool]]


def days(count: int) -> dt.timedelta:
    return dt.timedelta(days=count)


@task(name="maintenance.recover_stalled_jobs", queue=Queue.critical, retry=None)
async def recover_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Put back in the queue the running jobs of workers that stopped sending heartbeats
    (killed, host lost). Returns how many were re-queued."""
    settings = resources(context).settings.jobs
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_after_seconds)
    count = 0
    for job in stalled:
        await manager.retry_job(job)
        count += 1
        log.warning("job_recovered", job_id=job.id, task=job.task_name, worker_id=job.worker_id)
    return count


@task(name="maintenance.purge_expired_rows", queue=Queue.low, retry=None)
async def purge_expired_rows(context: JobContext, timestamp: int) -> dict[str, int]:
    """Delete what is past its retention period, rule by rule, in small batches."""
    found = resources(context)
    now = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    deleted: dict[str, int] = {}
    for rule in found.purge_rules:
        total = 0
        while True:
            async with job_transaction(context) as session:
                # By physical row address: works for any table, whatever its key.
                ctid: ColumnClause[Any] = literal_column("ctid")
                batch = (
                    select(ctid)
                    .select_from(rule.table)
                    .where(rule.expired(now, found.settings.retention))
                    .limit(PURGE_BATCH)
                )
                result = await session.execute(delete(rule.table).where(ctid.in_(batch)))
            removed = int(getattr(result, "rowcount", 0) or 0)
            total += removed
            if removed < PURGE_BATCH:
                break
        deleted[rule.name] = total
    log.info("purged", **deleted)
    # procrastinate's own finished jobs (their events go with them).
    await context.app.job_manager.delete_old_jobs(
        nb_hours=found.settings.retention.job_days * 24,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
    return deleted


@task(name="maintenance.analyze_hot_tables", queue=Queue.low, retry=None)
async def analyze_hot_tables(context: JobContext, timestamp: int) -> list[str]:
    """Refresh the planner's statistics of the busiest tables (autovacuum's ANALYZE lags
    behind bursty tables such as the job queue)."""
    found = resources(context)
    async with job_transaction(context) as session:
        known = set(
            (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            ).scalars()
        )
        analyzed = [name for name in found.analyze_tables if name in known]
        for name in analyzed:
            # The name was just found in pg_tables, so quoting it is all the escaping needed.
            quoted = '"' + name.replace('"', '""') + '"'
            await session.execute(text(f"ANALYZE {quoted}"))
    return analyzed
