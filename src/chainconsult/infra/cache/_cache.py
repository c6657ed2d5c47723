"""The two-level cache: L1 in this process, L2 in Redis when it is configured and answering.

A read tries L1, then joins a load of the same key already running in this process (single
flight), then L2 under a short Redis lock so that one process loads while the others wait for
its value. Every Redis failure turns into the memory-only path for that call and opens the
circuit for the next ones; nothing a request awaits ever raises because of Redis.

L1 is trusted for an entry's full TTL only while the invalidation channel (Redis pub/sub, else
PostgreSQL LISTEN/NOTIFY: _postgres.py) is subscribed, and with Redis the circuit is closed
("coherent"). Otherwise another process's write cannot reach us, so L1 keeps entries for at
most ``INCOHERENT_L1_TTL_S``: the promise that other processes drop a changed value within a
second holds in every state."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.cache._breaker import OUTAGE_ERRORS, CircuitState, RedisBreaker
from chainconsult.infra.cache._loads import FlightOutcome, Loaded
from chainconsult.infra.cache._memory import MemoryEntry, MemoryTier
from chainconsult.infra.cache._postgres import PostgresInvalidation
from chainconsult.infra.cache._redis import InvalidationListener, Lookup, RedisTier
from chainconsult.infra.cache._report import publish_backend, report_of
from chainconsult.infra.cache._stats import NameCounters, QueryStats
from chainconsult.infra.cache._tags import ALL_TAG, PendingTags

log = structlog.get_logger(__name__)
R = TypeVar("R")

INCOHERENT_L1_TTL_S = 1.0


class Cache:
    def __init__(
        self,
        *,
        redis: Redis | None,
        key_prefix: str,
        memory_max_bytes: int,
        enabled: bool = True,
        redis_timeout_s: float = 0.25,
        postgres: tuple[str, AsyncEngine] | None = None,
    ) -> None:
        """``postgres``: (libpq URL, engine) of the invalidation channel without Redis."""
        self.enabled = enabled
        self.key_prefix = key_prefix
        self.memory = MemoryTier(memory_max_bytes)
        self.memory_max_bytes = memory_max_bytes
        self.origin = uuid.uuid4().hex
        self._redis = redis
        self._tier = (
            RedisTier(redis, prefix=key_prefix, usable=self._redis_usable)
            if redis is not None
            else None
        )
        self._breaker = (
            RedisBreaker(redis, probe_timeout_s=redis_timeout_s) if redis is not None else None
        )
        self._listener = (
            InvalidationListener(
                self._tier, on_message=self._on_message, on_status=self._on_listener_status
            )
            if self._tier is not None
            else None
        )
        self._pg = (
            PostgresInvalidation(
                *postgres,
                key_prefix=key_prefix,
                origin=self.origin,
                on_message=self._on_message,
                on_status=self._on_listener_status,
            )
            if postgres is not None and redis is None and enabled
            else None
        )
        self._inflight: dict[tuple[str, tuple[int, ...]], asyncio.Future[FlightOutcome]] = {}
        self._pending = PendingTags()
        self._counters: dict[str, NameCounters] = {}

    # Lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._breaker is not None:
            self._breaker.on_change(self._on_circuit_change)
        for listener in (self._listener, self._pg):
            if listener is not None:
                listener.start()
        self._publish_backend()

    async def close(self) -> None:
        for listener in (self._listener, self._pg):
            if listener is not None:
                await listener.close()
        if self._breaker is not None:
            await self._breaker.close()
        if self._tier is not None:
            await self._tier.close()
        # The Redis client is its owner's to close (Resources: one pool per process).

    # State -----------------------------------------------------------------------------

    @property
    def redis_configured(self) -> bool:
        return self._tier is not None

    @property
    def circuit(self) -> CircuitState | None:
        return self._breaker.state if self._breaker is not None else None

    @property
    def channel(self) -> str | None:
        """Which invalidation channel this process listens on: redis, postgres or none."""
        return "redis" if self._listener else "postgres" if self._pg else None

    @property
    def subscribed(self) -> bool:
        return self.redis_subscribed or (self._pg is not None and self._pg.subscribed)

    @property
    def pending_invalidations(self) -> int:
        """Tags not yet sent to the other processes (their channel was away)."""
        return len(self._pending) + (self._pg.unsent if self._pg is not None else 0)

    @property
    def redis_subscribed(self) -> bool:
        return self._listener is not None and self._listener.subscribed

    @property
    def backend(self) -> str:
        """``redis`` while L2 is in use, else ``memory``."""
        return "redis" if self._redis_usable() else "memory"

    @property
    def coherent(self) -> bool:
        """L1 hears about every other process's invalidation."""
        if self._pg is not None:
            return self._pg.coherent
        return self._redis_usable() and self.subscribed

    def _redis_usable(self) -> bool:
        return self._breaker is not None and self._breaker.allows

    # Reads -----------------------------------------------------------------------------

    async def get_or_load(
        self,
        *,
        name: str,
        key: str,
        tags: Sequence[str],
        ttl: float,
        load: Callable[[], Awaitable[Loaded]],
        local_only: bool = False,
        shared_only: bool = False,
    ) -> bytes:
        """The encoded value of ``key``: cached, or from ``load`` (run once per process for
        concurrent callers). ``key`` must already identify the query, its version and its
        arguments; ``tags`` name what invalidates it. ``shared_only``: never from or into
        this process's memory, only Redis (whose invalidation the writer awaits before it
        answers), else ``load``: what every process must see changed at once."""
        if not self.enabled:
            return (await load()).payload
        counters = self._counters_for(name)
        full_key = f"{name}:{key}"
        all_tags = (*tags, ALL_TAG)
        if shared_only:
            return await self._fill(full_key, all_tags, (), ttl, load, counters, shared_only=True)
        while True:
            entry = self.memory.get(full_key)
            if entry is not None:
                counters.stats.l1_hits += 1
                counters.hit.inc()
                return entry.payload
            generations = self.memory.generations(all_tags)
            # Keyed by generations too: a caller arriving after an invalidation must not
            # join a load that started before it.
            flight = (full_key, generations)
            running = self._inflight.get(flight)
            if running is None:
                break
            outcome = await asyncio.shield(running)
            if outcome.retry:
                continue
            if outcome.error is not None:
                raise outcome.error
            assert outcome.payload is not None
            counters.stats.coalesced += 1
            counters.hit.inc()
            return outcome.payload

        future: asyncio.Future[FlightOutcome] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        # A load that began before the channel was up may hold a value whose invalidation
        # was never heard: only one that began coherent may keep its full TTL.
        trusted = self.coherent
        try:
            payload = await self._fill(
                full_key, all_tags, generations, ttl, load, counters, local_only, trusted
            )
        except asyncio.CancelledError:
            future.set_result(FlightOutcome(retry=True))
            raise
        except Exception as exc:
            # A due entry's reload that failed: answered from the entry, still live (_memory).
            if (kept := self.memory.reload_failed(full_key)) is None:
                future.set_result(FlightOutcome(error=exc))
                raise
            log.warning("cache_reload_failed", name=name, error=type(exc).__name__)
            future.set_result(FlightOutcome(payload=kept.payload))
            return kept.payload
        except BaseException as exc:
            future.set_result(FlightOutcome(error=exc))
            raise
        else:
            future.set_result(FlightOutcome(payload=payload))
            return payload
        finally:
            del self._inflight[flight]

    def peek(self, *, name: str, key: str) -> MemoryEntry | None:
        """The entry of ``key`` if this process's L1 holds a live one (counted as a hit, like
        the L1 hit of ``get_or_load``), else None; never loads and never awaits. None too for
        an entry due for a reload nobody has started: ``get_or_load`` starts it (_memory.py).
        Otherwise exactly what ``get_or_load`` would answer from L1."""
        if not self.enabled:
            return None
        entry = self.memory.get(f"{name}:{key}", may_refresh=False)
        if entry is None:
            return None
        counters = self._counters_for(name)
        counters.stats.l1_hits += 1
        counters.hit.inc()
        return entry

    async def _fill(
        self,
        full_key: str,
        tags: tuple[str, ...],
        generations: tuple[int, ...],
        ttl: float,
        load: Callable[[], Awaitable[Loaded]],
        counters: NameCounters,
        local_only: bool = False,
        trusted: bool = False,
        *,
        shared_only: bool = False,
    ) -> bytes:
        tier = self._tier if not local_only and self._redis_usable() else None
        keep = None if shared_only else trusted
        found: Lookup | None = None
        lock: Lock | None = None
        if tier is not None:
            found = await self._guard(tier.lookup(full_key, tags))
            if found is not None and found.entry is not None:
                return self._l2_hit(full_key, tags, generations, found, counters, keep)
            if found is not None:
                lock = tier.lock(full_key)
                if not await self._guard(lock.acquire()):
                    waited = await self._guard(tier.wait_for_holder(full_key, tags, lock))
                    if waited is not None and waited.entry is not None:
                        return self._l2_hit(full_key, tags, generations, waited, counters, keep)
                    lock = None
        try:
            loaded = await load()
            counters.stats.misses += 1
            counters.miss.inc()
            if loaded.cacheable and tier is not None and found is not None:
                await self._guard(tier.store(full_key, loaded.payload, found.tokens, ttl))
            if loaded.cacheable and not shared_only:
                self.memory.put(
                    full_key,
                    loaded.payload,
                    ttl=self._l1_ttl(ttl, trusted),
                    tags=tags,
                    generations=generations,
                )
            return loaded.payload
        finally:
            if lock is not None and tier is not None:
                await self._guard(tier.release(lock))

    def _l2_hit(
        self,
        full_key: str,
        tags: tuple[str, ...],
        generations: tuple[int, ...],
        found: Lookup,
        counters: NameCounters,
        trusted: bool | None,
    ) -> bytes:
        """``trusted`` None: a shared_only read, kept out of L1."""
        assert found.entry is not None
        if trusted is not None:
            remaining = found.entry.expires_at - time.time()
            self.memory.put(
                full_key,
                found.entry.payload,
                ttl=self._l1_ttl(remaining, trusted),
                tags=tags,
                generations=generations,
            )
        counters.stats.l2_hits += 1
        counters.hit.inc()
        return found.entry.payload

    def _l1_ttl(self, ttl: float, trusted: bool) -> float:
        return ttl if trusted and self.coherent else min(ttl, INCOHERENT_L1_TTL_S)

    async def _guard(self, call: Awaitable[R]) -> R | None:
        """Await a Redis call; None instead of any Redis error. Outages open the circuit."""
        try:
            return await call
        except OUTAGE_ERRORS as exc:
            if self._breaker is not None:
                await self._breaker.record_failure(exc)
        except RedisError as exc:
            log.warning("cache_redis_error", error=type(exc).__name__, detail=str(exc)[:200])
        return None

    # Invalidation ------------------------------------------------------------------------

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Drop every value carrying one of ``tags``, here at once and in every other process
        within a second. Call after the write commits (see ``invalidate_after_commit``). Never
        raises: with the channel away, the tags are sent again when it is back."""
        tags = list(dict.fromkeys(tags))
        if not tags:
            return
        self.memory.invalidate(tags)
        if self._pg is not None:
            await self._pg.publish(tags)
        if self._tier is None:
            return
        if not self._redis_usable():
            self._pending.add(tags)
            return
        try:
            await self._tier.invalidate(tags, origin=self.origin)
        except Exception as exc:
            self._pending.add(tags)
            if isinstance(exc, OUTAGE_ERRORS) and self._breaker is not None:
                await self._breaker.record_failure(exc)
            else:
                log.warning("cache_invalidate_failed", error=type(exc).__name__)

    async def _replay_pending(self) -> None:
        pending = self._pending.take()
        if pending:
            log.info("cache_replaying_invalidations", tags=len(pending))
            await self.invalidate(pending)

    # Events ------------------------------------------------------------------------------

    def _on_message(self, origin: str, tags: list[str]) -> None:
        if origin != self.origin:
            self.memory.invalidate(tags)

    async def _on_listener_status(self, subscribed: bool) -> None:
        if not subscribed:
            # Messages may be missed from now on: forget what they would have corrected.
            self.memory.clear()
        log.info("cache_invalidation_channel", channel=self.channel, subscribed=subscribed)

    async def _on_circuit_change(self, state: CircuitState) -> None:
        self._publish_backend()
        if state is CircuitState.open:
            self.memory.clear()
        else:
            await self._replay_pending()

    def _publish_backend(self) -> None:
        publish_backend(self.backend)

    # Reporting ---------------------------------------------------------------------------

    def _counters_for(self, name: str) -> NameCounters:
        counters = self._counters.get(name)
        if counters is None:
            counters = self._counters[name] = NameCounters.labelled(name)
        return counters

    def stats(self) -> dict[str, QueryStats]:
        """Hits and misses per cache name, counted by this process since it started."""
        return {name: counters.stats for name, counters in sorted(self._counters.items())}

    def report(self) -> dict[str, Any]:
        """JSON-ready state for detailed health: backend, Redis circuit, invalidation
        channel, L1 use, and hit rate per cache (this process)."""
        return report_of(self)
