"""Health warns while the cache's invalidation channel is down: memory entries then live a
second (correct, but every entry is reloaded each second), which an operator should see."""

from __future__ import annotations

from pathlib import Path

from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings
from tests.helpers import serving
from tests.infra.cache.test_cache import until


async def test_health_warns_while_the_postgres_invalidation_channel_is_down(
    database_url: str, tmp_path: Path
) -> None:
    app = create_app(
        make_settings(database_url, tmp_path, REDIS_URL=None, HEALTH_CACHE_SECONDS="0")
    )
    async with serving(app) as client:
        cache = resources_of(app).cache
        listener = cache._pg
        assert listener is not None
        await until(lambda: cache.coherent)

        async def cache_check() -> dict[str, str]:
            body = (await client.get("/api/v2/health")).json()
            [check] = body["checks"]["cache:hitRate"]
            return dict(check)

        assert (await cache_check())["status"] == "pass"

        await listener.close()  # the channel stops and does not come back by itself
        assert not cache.coherent
        assert (await cache_check())["status"] == "warn"

        listener.start()
        await until(lambda: cache.coherent)
        assert (await cache_check())["status"] == "pass"
