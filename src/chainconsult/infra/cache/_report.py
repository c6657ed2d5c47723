"""The cache's state for detailed health, and its backend gauge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chainconsult.infra.monitoring.metrics import cache_backend

if TYPE_CHECKING:
    from chainconsult.infra.cache._cache import Cache


def report_of(cache: Cache) -> dict[str, Any]:
    # "redis" keeps its keys for existing readers; "invalidation" names the channel in use.
    return {
        "enabled": cache.enabled,
        "backend": cache.backend,
        "redis": {
            "configured": cache.redis_configured,
            "circuit": cache.circuit.value if cache.circuit is not None else None,
            "invalidation_channel": cache.redis_subscribed,
            "pending_invalidations": cache.pending_invalidations if cache.redis_configured else 0,
        },
        "invalidation": {
            "channel": cache.channel,
            "subscribed": cache.subscribed,
            "coherent": cache.coherent,
            "pending": cache.pending_invalidations,
        },
        "memory": {
            "entries": len(cache.memory),
            "bytes": cache.memory.bytes_used,
            "max_bytes": cache.memory_max_bytes,
        },
        "caches": {name: stats.as_dict() for name, stats in cache.stats().items()},
    }


def publish_backend(backend: str) -> None:
    cache_backend.labels(backend="redis").set(1 if backend == "redis" else 0)
    cache_backend.labels(backend="memory").set(1 if backend == "memory" else 0)
