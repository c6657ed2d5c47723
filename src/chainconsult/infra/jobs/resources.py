"""What a running task may use, handed to it through procrastinate's job context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from procrastinate import JobContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.infra.db.session import transaction

if TYPE_CHECKING:
    from chainconsult.infra.jobs.maintenance import PurgeRule
    from chainconsult.infra.jobs.observe import JobFailed

_KEY = "chainconsult"


@dataclass(frozen=True, slots=True)
class JobResources:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    purge_rules: Sequence[PurgeRule] = ()
    """What the nightly purge deletes (composed in chainconsult.schedules)."""
    analyze_tables: Sequence[str] = ()
    """Hot tables the nightly maintenance ANALYZEs."""
    on_final_failure: Sequence[Callable[[JobFailed], Awaitable[None]]] = field(default=())
    """Called once when a job fails for good (after its last attempt), e.g. to raise an
    alert."""

    def as_context(self) -> dict[str, object]:
        return {_KEY: self}


def resources(context: JobContext) -> JobResources:
    found = context.additional_context.get(_KEY)
    if not isinstance(found, JobResources):
        raise RuntimeError("the job runs outside a chainconsult worker (no resources)")
    return found


@asynccontextmanager
async def job_transaction(context: JobContext) -> AsyncIterator[AsyncSession]:
    """One transaction for a unit of a task's work (``transaction``: commits when the block
    ends, rolls back on error, runs ``after_commit`` callbacks once committed). Deferring
    inside it with ``defer(session, ...)`` is as transactional as in a request."""
    async with transaction(resources(context).sessionmaker) as session:
        yield session
