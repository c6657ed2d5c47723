"""What one server process opens once and shares: the engine, the one Redis connection pool,
the cache, the rate limiter, the object store, the live-update hub, the monitoring and (in
embedded mode) the job worker. The app's lifespan builds them in order (``open_resources``,
chainconsult/process.py), keeps them in one ``Resources``, and closes them in reverse order;
middleware and dependencies reach them through ``resources_of``.

Settings are not here: they are read before the lifespan runs (the middleware stack is
built from them) and stay ``app.state.settings``, read through ``config.settings_of``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from chainconsult.infra.redis_client import connection_options

if TYPE_CHECKING:
    # Types only: the parts' modules import much of infra, which imports this one.
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from chainconsult.infra.cache import Cache
    from chainconsult.infra.jobs.worker import InProcessWorker
    from chainconsult.infra.live import LiveHub
    from chainconsult.infra.monitoring.lifespan import Monitoring
    from chainconsult.infra.ratelimit import SharedRateLimiter
    from chainconsult.infra.settings.caching import RedisSettings
    from chainconsult.infra.storage import ObjectStore


@dataclass(slots=True)
class Resources:
    engine: AsyncEngine
    """The request pool (monitoring's health probe has a one-connection engine of its own)."""
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    """The one client over the process's one Redis connection pool; None without REDIS_URL.
    The cache, the rate limiter, live updates and monitoring all use its pool."""
    cache: Cache
    limiter: SharedRateLimiter
    object_store: ObjectStore
    live: LiveHub
    monitoring: Monitoring
    job_worker: InProcessWorker[Any] | None
    """The embedded job worker (embedded mode or ``serve --with-worker``), else None."""
    secret_key: bytes
    """The signing key of tokens and CSRF (from SECRET_KEY)."""
    started_monotonic: float
    """``time.monotonic()`` when the process started serving: uptime on the health pages."""


def resources_of(owner: HTTPConnection | Starlette) -> Resources:
    """The process's resources, from a request or the app (middleware pass ``scope["app"]``).
    AttributeError before the lifespan has opened them."""
    # Starlette first: a plain class, where HTTPConnection's isinstance goes through the
    # Mapping ABC (about 0.4 µs, on the hot path of every request).
    app = owner if isinstance(owner, Starlette) else owner.app
    resources: Resources = app.state.resources
    return resources


def shared_redis(settings: RedisSettings) -> Redis | None:
    """The process's Redis client and, in it, its one connection pool (the other users wrap
    the same pool: ``Redis(connection_pool=shared.connection_pool)``)."""
    if settings.url is None:
        return None
    timeout = settings.socket_timeout_ms / 1000
    # Every user falls back on a failure (memory, the circuit breaker, "Redis is away"), so
    # one attempt is right; connection_options also keeps each opening to one round trip.
    client: Redis = Redis.from_url(
        settings.url.get_secret_value(),
        health_check_interval=30,
        client_name="chainconsult",
        **connection_options(timeout),
    )
    return client
