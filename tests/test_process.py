"""The process's resources are opened in one place, share one Redis pool, and close in reverse
order of opening, also when starting fails halfway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chainconsult import process
from chainconsult.app import create_app
from chainconsult.infra.cache import Cache
from chainconsult.infra.live import LiveHub, RedisLiveBus
from chainconsult.infra.monitoring.lifespan import Monitoring
from chainconsult.infra.ratelimit import SharedRateLimiter
from chainconsult.infra.resources import resources_of
from chainconsult.process import open_resources
from tests.conftest import make_settings
from tests.helpers import serving


def _record_closing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parts' closing methods, wrapped to note their order."""
    closed: list[str] = []
    for name, owner, method in (
        ("cache", Cache, "close"),
        ("limiter", SharedRateLimiter, "aclose"),
        ("live", LiveHub, "stop"),
        ("monitoring", Monitoring, "stop"),
    ):
        original = getattr(owner, method)

        async def wrapped(self: Any, *, _name: str = name, _original: Any = original) -> None:
            closed.append(_name)
            await _original(self)

        monkeypatch.setattr(owner, method, wrapped)
    return closed


async def test_every_redis_user_shares_the_one_pool(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, REDIS_URL=redis_url)
    async with open_resources(settings) as resources:
        assert resources.redis is not None
        pool = resources.redis.connection_pool
        assert isinstance(resources.live.bus, RedisLiveBus)
        assert resources.live.bus.redis is resources.redis
        assert resources.live.slots.redis is resources.redis
        # Private attributes: the wiring itself is what is under test.
        assert resources.cache._redis is resources.redis
        assert resources.limiter._redis is not None
        assert resources.limiter._redis.bridge.storage.connection_pool is pool
        lease = resources.monitoring.evaluator.lease
        assert lease is not None
        assert lease.redis is resources.redis


async def test_resources_close_in_reverse_order_of_opening(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _record_closing(monkeypatch)
    app = create_app(make_settings(database_url, tmp_path, REDIS_URL=None))
    async with serving(app) as client:
        assert (await client.get("/livez")).status_code == 200
        assert resources_of(app).redis is None
        assert closed == []
    assert closed == ["monitoring", "live", "limiter", "cache"]


async def test_a_failed_start_closes_what_was_already_open(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _record_closing(monkeypatch)

    def broken(*_: Any, **__: Any) -> Monitoring:
        raise RuntimeError("monitoring cannot start")

    monkeypatch.setattr(process, "build_monitoring", broken)
    settings = make_settings(database_url, tmp_path, REDIS_URL=None)
    with pytest.raises(RuntimeError, match="monitoring cannot start"):
        async with open_resources(settings):
            pass
    assert closed == ["live", "limiter", "cache"]
