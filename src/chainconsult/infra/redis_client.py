"""How every asyncio Redis client of the platform connects (the app's, the cache's, the rate
limiter's): one home for the options, so that none of them pays more than a round trip to open a
connection.

redis-py opens a connection whenever every pooled one is busy, which is what a burst of requests
does. By default each opening reads the installed package's metadata (``DriverInfo``: 2-3 ms of
the event loop's CPU, every time) and then sends CLIENT SETINFO (unknown before Redis 7.2) and
CLIENT MAINT_NOTIFICATIONS (a Redis Enterprise feature) before the command. A burst of 200 logins
opened some 80 such connections in one worker, the handshakes overran the socket timeout of a
loop busy with the burst, and the rate limiter fell back to memory
(docs/decisions/0041-login-burst-leaves-the-loop-to-readers.md)."""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig


def connection_options(timeout_seconds: float) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio.Redis.from_url`` (and `limits`' storage, which
    passes them on)."""
    return {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        # redis-py retries ten times with backoff by default: seconds of stall on a dead
        # Redis. Every user here treats a failure as "Redis is away" and carries on.
        "retry": Retry(NoBackoff(), 0),
        # No client identification: no package metadata read, no CLIENT SETINFO per opening.
        "driver_info": None,
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }
