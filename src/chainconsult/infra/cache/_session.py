"""The cache and the unit of work: the app's sessionmaker carries the cache in every session's
``info``, so a repository finds it without new constructor arguments, and invalidations queued
during a transaction run once, after it commits (never on rollback)."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.infra.cache._cache import Cache
from chainconsult.infra.cache._tags import ALL_TAG
from chainconsult.infra.db.session import after_commit

log = structlog.get_logger(__name__)

_CACHE = "chainconsult.cache"
_PENDING = "chainconsult.cache.pending_tags"


def attach_cache(sessionmaker: async_sessionmaker[AsyncSession], cache: Cache) -> None:
    """Every session this sessionmaker opens from now on carries ``cache``."""
    sessionmaker.configure(info={_CACHE: cache})


def cache_of(session: AsyncSession) -> Cache | None:
    cache = session.info.get(_CACHE)
    return cache if isinstance(cache, Cache) else None


def invalidate_after_commit(session: AsyncSession, tags: Iterable[str]) -> None:
    """Queue ``tags`` for invalidation when this session's transaction commits.

    Sessions without a cache (a CLI command) queue nothing: their writes reach cached readers
    through the TTLs."""
    cache = cache_of(session)
    if cache is None:
        return
    pending: set[str] | None = session.info.get(_PENDING)
    if pending is None:
        pending = set()
        session.info[_PENDING] = pending

        async def invalidate() -> None:
            queued: set[str] = session.info.pop(_PENDING, set())
            await cache.invalidate(sorted(queued))

        after_commit(session, invalidate)
    pending.update(tags)


def has_pending_invalidation(session: AsyncSession, tags: Iterable[str]) -> bool:
    """Whether this transaction has written something a query with ``tags`` could read."""
    pending: set[str] | None = session.info.get(_PENDING)
    if not pending:
        return False
    if ALL_TAG in pending:
        return True
    tags = set(tags)
    # An untagged query cannot say what it reads: assume the worst.
    return not tags or not pending.isdisjoint(tags)
