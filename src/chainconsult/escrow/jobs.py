"""The escrow's tasks: the watcher (periodic, one at a time) and the arbiter's resolve.

The chain client (web3) is imported when a task runs: the API processes import this module
for the task objects they defer, and never talk to the chain."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from procrastinate import JobContext

from chainconsult.escrow.repository import RESOLUTION_TASK
from chainconsult.infra.jobs import Backoff, PermanentJobError, Queue, task
from chainconsult.infra.jobs import resources as job_resources

ChainStep = Callable[..., Awaitable[int]]
"""A watcher step: (sessionmaker, escrow settings, chain client) to a count."""

FOLLOW_INTERVAL_SECONDS = 5


async def _with_chain(context: JobContext, step: ChainStep) -> int:
    """Run ``step`` with a chain client of its own, or do nothing (0) where no chain is
    configured."""
    found = job_resources(context)
    settings = found.settings.escrow
    if not settings.configured:
        return 0
    from chainconsult.escrow.watcher import chain_client

    client = chain_client(settings)
    try:
        return await step(found.sessionmaker, settings, client)
    finally:
        await client.close()


@task(name="escrow.follow", queue=Queue.critical, retry=None, lock="escrow-follow")
async def follow_escrow(context: JobContext, timestamp: int) -> int:
    """Apply the escrow contract's newly confirmed events (and undo reorganised ones)."""
    from chainconsult.escrow.watcher import follow_chain

    return await _with_chain(context, follow_chain)


@task(name="escrow.reconcile", queue=Queue.critical, retry=None, lock="escrow-follow")
async def reconcile_escrow(context: JobContext, timestamp: int) -> int:
    """Compare the fee settings and the milestones with the contract at the last confirmed
    block (the differences, logged as critical; the gauge
    chainconsult_escrow_reconciliation_differences, which the critical alert
    escrow_reconciliation_difference watches)."""
    from chainconsult.escrow.watcher import reconcile

    return await _with_chain(context, reconcile)


@task(
    name=RESOLUTION_TASK,
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
