"""The one place a server process opens what it shares (``Resources``: engine, Redis pool,
cache, rate limiter, object store, live updates, job worker, monitoring) and closes it again.
Each part is opened in order and its closing registered at once, so they close in reverse
order, and a failure while starting closes what was already open."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.infra.cache import attach_cache, build_cache
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.jobs.worker import InProcessWorker
from chainconsult.infra.live import build_live_hub
from chainconsult.infra.monitoring.lifespan import build_monitoring
from chainconsult.infra.ratelimit import SharedRateLimiter
from chainconsult.infra.resources import Resources, shared_redis
from chainconsult.infra.storage import open_object_store


def _in_process_worker(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> InProcessWorker[Any] | None:
    """Embedded mode (or `serve --with-worker`): run the job worker on this event loop."""
    if not settings.jobs.in_process_worker:
        return None
    from chainconsult.schedules import register_schedules, worker_resources

    return InProcessWorker(worker_resources(settings, sessionmaker), schedules=register_schedules)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    async with AsyncExitStack() as closing:
        engine = build_engine(settings.database)
        closing.push_async_callback(engine.dispose)
        sessionmaker = build_sessionmaker(engine)
        redis = shared_redis(settings.redis)
        if redis is not None:
            closing.push_async_callback(redis.aclose)
        cache = build_cache(settings, redis, engine)
        await cache.start()
        closing.push_async_callback(cache.close)
        attach_cache(sessionmaker, cache)
        limiter = SharedRateLimiter(
            redis_url=settings.redis.url.get_secret_value() if settings.redis.url else None,
            connection_pool=redis.connection_pool if redis is not None else None,
            key_prefix=settings.redis.key_prefix,
            probe_interval=settings.rate_limits.redis_probe_seconds,
            penalty_max_seconds=settings.rate_limits.penalty_max_seconds,
        )
        closing.push_async_callback(limiter.aclose)
        object_store = open_object_store(settings)
        live = build_live_hub(settings, sessionmaker, engine, redis)
        live.start()
        closing.push_async_callback(live.stop)
        job_worker = _in_process_worker(settings, sessionmaker)
        if job_worker is not None:
            job_worker.start()
            closing.push_async_callback(job_worker.stop)
        monitoring = build_monitoring(settings, engine=engine, redis=redis, cache=cache)
        monitoring.start()
        closing.push_async_callback(monitoring.stop)
        yield Resources(
            engine=engine,
            sessionmaker=sessionmaker,
            redis=redis,
            cache=cache,
            limiter=limiter,
            object_store=object_store,
            live=live,
            monitoring=monitoring,
            job_worker=job_worker,
            secret_key=settings.secret_key(),
            started_monotonic=time.monotonic(),
        )
