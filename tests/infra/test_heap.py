"""The objects built at start-up are frozen out of the cyclic collector while the app runs
(infra/heap.py), young collections wait for more objects, and both are handed back at
shutdown."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from asgi_lifespan import LifespanManager
from bench._asgi import asgi_status
from fastapi import FastAPI

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.heap import YOUNG_THRESHOLD, startup_objects_frozen


@pytest.fixture
def real_start_up_freeze(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The freeze the other tests skip (conftest), on a heap nothing else has frozen; the
    session's own freeze is put back afterwards."""
    monkeypatch.setattr("chainconsult.app.startup_objects_frozen", startup_objects_frozen)
    gc.unfreeze()
    yield
    gc.collect()
    gc.freeze()


@pytest.mark.usefixtures("real_start_up_freeze")
async def test_start_up_objects_are_frozen_while_the_app_runs(settings: Settings) -> None:
    app: FastAPI = create_app(settings)
    before = gc.get_freeze_count()

    async with LifespanManager(app):
        frozen = gc.get_freeze_count()
        # The app and its routes are among the frozen objects, not in a collected generation.
        assert frozen > before
        assert frozen > 10_000
        assert not any(app is obj for obj in gc.get_objects())

    assert gc.get_freeze_count() == 0
    assert any(app is obj for obj in gc.get_objects(generation=2))


@pytest.mark.usefixtures("real_start_up_freeze")
async def test_young_collections_wait_for_more_objects_while_the_app_runs(
    settings: Settings,
) -> None:
    before = gc.get_threshold()
    assert before[0] < YOUNG_THRESHOLD

    async with LifespanManager(create_app(settings)):
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])

    assert gc.get_threshold() == before


async def test_requests_leave_no_cyclic_garbage(settings: Settings) -> None:
    """What makes a young threshold of 50,000 safe (decision 0050): the requests a worker
    serves are freed by reference counting, so garbage does not wait for the collector. (A
    malformed JSON body is the exception: FastAPI's decode error leaves a traceback cycle of
    about 100 objects, no buffer among them, collected when 50,000 have added up.)"""
    requests = [
        ("GET", "/api/v2/experts", 200),
        ("GET", "/api/v2/auth/me", 401),
        ("GET", "/api/v2/no-such-route", 404),
        ("POST", "/api/v2/auth/login", 422),  # no body
        ("GET", "/experts", 200),
    ]
    async with LifespanManager(create_app(settings)) as manager:
        for method, path, status in requests:  # warm: caches filled, imports done
            assert await asgi_status(manager.app, method, path) == status
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                for method, path, _status in requests:
                    await asgi_status(manager.app, method, path)
            found = gc.collect()
        finally:
            gc.enable()
    assert found == 0
