"""The scheduled backup (BACKUP_SCHEDULE), run by the job workers: in embedded mode that is
the worker inside `serve`. It backs up, then prunes by BACKUP_RETENTION."""

from __future__ import annotations

import asyncio
import datetime as dt

import structlog
from procrastinate import JobContext

from chainconsult.infra.backup.catalog import backup_store, prune
from chainconsult.infra.backup.progress import ThrottledLines
from chainconsult.infra.backup.retention import RetentionRule
from chainconsult.infra.backup.service import take_backup
from chainconsult.infra.jobs.job_app import task
from chainconsult.infra.jobs.queues import Queue
from chainconsult.infra.jobs.resources import resources
from chainconsult.infra.jobs.retry import Backoff
from chainconsult.infra.monitoring.metrics import backup_last_success_timestamp_seconds

log = structlog.get_logger("chainconsult.backup")


@task(
    name="backup.scheduled_backup",
    queue=Queue.low,
    # A store or server hiccup is worth two more tries, well apart; the alert covers the rest.
    retry=Backoff(max_attempts=3, base_seconds=300.0),
    lock="backup",
)
async def scheduled_backup(context: JobContext, timestamp: int) -> dict[str, object]:
    settings = resources(context).settings
    lines = ThrottledLines(lambda line: log.info("backup_progress", step=line), interval_s=30.0)
    manifest = await asyncio.to_thread(take_backup, settings, progress=lines)
    backup_last_success_timestamp_seconds.set(manifest.created_at.timestamp())
    rule = RetentionRule.parse(settings.backup.retention)
    pruned = await asyncio.to_thread(
        prune, backup_store(settings), rule, now=dt.datetime.now(dt.UTC)
    )
    log.info(
        "backup_done",
        backup_id=manifest.id,
        size=manifest.size,
        rows=manifest.rows,
        seconds=manifest.seconds,
        pruned=pruned,
    )
    return {"id": manifest.id, "pruned": pruned}
