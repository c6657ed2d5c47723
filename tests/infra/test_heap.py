"""The objects built at start-up are frozen out of the cyclic collector while the app runs
(infra/heap.py), young collections wait for more objects, and both are handed back at
shutdown."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from asgi_lifespan import LifespanManager
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


async def _call(app: FastAPI, method: str, path: str, body: bytes = b"") -> int:
    """One request straight to the ASGI callable (no client library, whose own objects would
    count); its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status


async def test_requests_leave_no_cyclic_garbage(settings: Settings) -> None:
    """What makes a young threshold of 50,000 safe (decision 0050): the requests a worker
    serves are freed by reference counting, so garbage does not wait for the collector. (A
    malformed JSON body is the exception: FastAPI's decode error leaves a traceback cycle of
    about 100 objects, no buffer among them, collected when 50,000 have added up.)"""
    requests = [
        ("GET", "/api/v2/experts", b"", 200),
        ("GET", "/api/v2/auth/me", b"", 401),
        ("GET", "/api/v2/no-such-route", b"", 404),
        ("POST", "/api/v2/auth/login", b'{"email": 1}', 422),
        ("GET", "/experts", b"", 200),
    ]
    async with LifespanManager(create_app(settings)) as manager:
        for method, path, body, status in requests:  # warm: caches filled, imports done
            assert await _call(manager.app, method, path, body) == status
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                for method, path, body, _status in requests:
                    await _call(manager.app, method, path, body)
            found = gc.collect()
        finally:
            gc.enable()
    assert found == 0
