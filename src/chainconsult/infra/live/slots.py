"""The per-account limit on open event streams (SSE_MAX_CONNECTIONS_PER_USER). With Redis it
holds across every process: a sorted set per account of stream ids scored by their last
refresh, so a crashed process's streams age out. Without Redis (or while it is away) each
process counts its own streams."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import structlog
from redis.asyncio import Redis

log = structlog.get_logger("chainconsult.live")


class StreamSlots:
    def __init__(
        self, maximum: int, *, redis: Redis | None, key_prefix: str, ttl_seconds: float
    ) -> None:
        self.maximum = maximum
        self.ttl = ttl_seconds
        self.prefix = f"{key_prefix}:live:streams:"
        # The process's shared client (Resources), closed by its owner.
        self.redis = redis

    def _key(self, account_id: uuid.UUID) -> str:
        return f"{self.prefix}{account_id}"

    async def acquire(self, account_id: uuid.UUID, stream_id: uuid.UUID, local: int) -> bool:
        """Take a slot for a new stream; ``local`` is how many the account holds here."""
        if self.redis is not None:
            try:
                return await self._acquire_shared(account_id, stream_id)
            except Exception as exc:  # Redis away: count this process's
                log.warning("live_slots_degraded", error=str(exc))
        return local < self.maximum

    async def _acquire_shared(self, account_id: uuid.UUID, stream_id: uuid.UUID) -> bool:
        assert self.redis is not None
        key, now = self._key(account_id), time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - self.ttl)
            pipe.zadd(key, {str(stream_id): now})
            pipe.zcard(key)
            pipe.expire(key, int(self.ttl) + 1)
            _, _, count, _ = await pipe.execute()
        if int(count) <= self.maximum:
            return True
        await self.redis.zrem(key, str(stream_id))
        return False

    async def release(self, account_id: uuid.UUID, stream_id: uuid.UUID) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.zrem(self._key(account_id), str(stream_id))
        except Exception as exc:  # it ages out
            log.warning("live_slots_degraded", error=str(exc))

    async def refresh(self, streams: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """Keep this process's streams counted (called every heartbeat)."""
        if self.redis is None or not streams:
            return
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for account_id, stream_id in streams:
                pipe.zadd(self._key(account_id), {str(stream_id): now})
                pipe.expire(self._key(account_id), int(self.ttl) + 1)
            await pipe.execute()
