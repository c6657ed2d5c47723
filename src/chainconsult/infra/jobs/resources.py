"""What a running task may use, handed to it through procrastinate's job context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from procrastinate import JobContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.db.session import transaction

if TYPE_CHECKING:
    from chainconsult.infra.jobs.maintenance import PurgeRule
    from chainconsult.infra.jobs.observe import JobFailed
    from chainconsult.infra.settings.platform import PlatformSettings

_KEY = "chainconsult"
SettingsT = TypeVar("SettingsT", bound="PlatformSettings")
"""The settings object the worker was built with (chainconsult.config.Settings in the
platform); infra reads only the PlatformSettings part of it."""


@dataclass(frozen=True, slots=True)
class JobResources(Generic[SettingsT]):
    settings: SettingsT
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


def resources(context: JobContext) -> JobResources[Any]:
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
