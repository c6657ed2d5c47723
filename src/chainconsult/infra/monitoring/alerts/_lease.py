"""One evaluator at a time across every node: a Redis lease taken with ``SET NX PX`` and
renewed by its holder. Without Redis (or while it is down) each process evaluates on its own;
the database's unique firing row then decides who notifies, and PagerDuty's dedup key merges
pages when even the database is down."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

log = structlog.get_logger("chainconsult.alerts")

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class EvaluatorLease:
    def __init__(self, redis: Any, key: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.token = uuid.uuid4().hex
        self.coordinated = False
        """Whether the last decision came from Redis (False: evaluating alone)."""

    async def hold(self) -> bool:
        """True when this process should evaluate now."""
        try:
            if await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
                held = True
            else:
                held = bool(await self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))
        except Exception as exc:
            if self.coordinated:
                log.warning("alert_lease_unavailable", error=type(exc).__name__)
            self.coordinated = False
            return True
        self.coordinated = True
        return held

    async def release(self) -> None:
        try:
            await self.redis.eval(_RELEASE, 1, self.key, self.token)
        except Exception:
            log.debug("alert_lease_release_failed")
