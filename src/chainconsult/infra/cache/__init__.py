"""Two-level cache: L1 in process memory, L2 in Redis, with tag invalidation after commit,
cross-process L1 invalidation over Redis pub/sub (without Redis, PostgreSQL LISTEN/NOTIFY),
single-flight loads, and a circuit breaker that keeps serving from memory while Redis is away.

cashews was evaluated first and is not used: it has tags, locks and metrics, but (1) a failing
Redis makes every call wait out its socket timeout and then miss, with no memory fallback and
no breaker; (2) its tags are key sets, so a value loaded before a write and stored after the
write's invalidation survives (our tag tokens reject it); (3) it pickles values by default;
(4) its client-side cache needs CLIENT TRACKING and invalidates keys, not tags. What it would
have given us comes from well-kept parts instead: cachetools (bounded TTL LRU), redis-py
(pipelines, pub/sub, the Lock), stamina (backoff), pydantic (typed JSON codecs).

Use:
    ``@cached("experts.detail", ttl=300, tags=lambda expert_id: [f"expert:{expert_id}"])`` on
    a repository method; ``invalidate_after_commit(session, [f"expert:{id}"])`` in the service
    that writes; ``CachedQuery`` where there is no session; ``Cache.report()`` for health.
"""

from chainconsult.infra.cache._breaker import CircuitState
from chainconsult.infra.cache._cache import INCOHERENT_L1_TTL_S, Cache
from chainconsult.infra.cache._http import (
    PUBLIC_REVALIDATE,
    body_query,
    cached_body,
    cached_json,
    etag_of,
)
from chainconsult.infra.cache._lifecycle import AppCache, build_cache, request_cache
from chainconsult.infra.cache._loads import Loaded
from chainconsult.infra.cache._query import CachedQuery, Codec, cached, key_digest
from chainconsult.infra.cache._session import (
    attach_cache,
    cache_of,
    has_pending_invalidation,
    invalidate_after_commit,
)
from chainconsult.infra.cache._shortcut import CachedReadShortcut
from chainconsult.infra.cache._stats import QueryStats
from chainconsult.infra.cache._tags import ALL_TAG

__all__ = [
    "ALL_TAG",
    "INCOHERENT_L1_TTL_S",
    "PUBLIC_REVALIDATE",
    "AppCache",
    "Cache",
    "CachedQuery",
    "CachedReadShortcut",
    "CircuitState",
    "Codec",
    "Loaded",
    "QueryStats",
    "attach_cache",
    "body_query",
    "build_cache",
    "cache_of",
    "cached",
    "cached_body",
    "cached_json",
    "etag_of",
    "has_pending_invalidation",
    "invalidate_after_commit",
    "key_digest",
    "request_cache",
]
