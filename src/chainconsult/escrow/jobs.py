"""The escrow's tasks: the watcher (periodic, one at a time) and the arbiter's resolve.

The chain client (web3) is imported when a task runs: the API processes import this module
for the task objects they defer, and never talk to the chain."""

from __future__ import annotations

import uuid

from procrastinate import JobContext

from chainconsult.infra.jobs import Backoff, PermanentJobError, Queue, task
from chainconsult.infra.jobs import resources as job_resources

FOLLOW_INTERVAL_SECONDS = 5


@task(name="escrow.follow", queue=Queue.critical, retry=None, lock="escrow-follow")
async def follow_escrow(context: JobContext, timestamp: int) -> int:
    """Apply the escrow contract's newly confirmed events (and undo reorganised ones)."""
    found = job_resources(context)
    settings = found.settings.escrow
    if not settings.configured:
        return 0
    from chainconsult.escrow.watcher import chain_client, follow_chain

    client = chain_client(settings)
    try:
        return await follow_chain(found.sessionmaker, settings, client)
    finally:
        await client.close()


@task(name="escrow.reconcile", queue=Queue.critical, retry=None, lock="escrow-follow")
async def reconcile_escrow(context: JobContext, timestamp: int) -> int:
    """Compare the milestones with the contract at the last confirmed block (the differences,
    logged as critical; the gauge chainconsult_escrow_reconciliation_differences)."""
    found = job_resources(context)
    settings = found.settings.escrow
    if not settings.configured:
        return 0
    from chainconsult.escrow.watcher import chain_client, reconcile

    client = chain_client(settings)
    try:
        return await reconcile(found.sessionmaker, settings, client)
    finally:
        await client.close()


@task(
    name="escrow.send_resolution",
    queue=Queue.critical,
    retry=Backoff(max_attempts=12, base_seconds=5, cap_seconds=600),
)
async def resolve_dispute(context: JobContext, *, milestone_id: str) -> str:
    """Send the arbiter's resolve transaction of one disputed milestone."""
    try:
        target = uuid.UUID(milestone_id)
    except ValueError as exc:
        raise PermanentJobError(f"not a milestone id: {milestone_id!r}") from exc
    found = job_resources(context)
    settings = found.settings.escrow
    if not settings.configured or settings.arbiter_key_file is None:
        raise PermanentJobError("escrow or its arbiter key is not configured")
    from chainconsult.escrow.watcher import chain_client, send_resolution

    client = chain_client(settings)
    try:
        return await send_resolution(found.sessionmaker, settings, client, target)
    finally:
        await client.close()
