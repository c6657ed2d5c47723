"""LOG_TO_DATABASE keeps warnings and errors (not info lines) in log_entries, with the request
id, without making the request wait for the write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import structlog
from fastapi import FastAPI
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings
from tests.helpers import serving


@pytest.fixture
async def logging_app(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, LOG_TO_DATABASE="true")
    app = create_app(settings)

    async def noisy() -> dict[str, str]:
        log = structlog.get_logger("chainconsult.payments")
        log.info("routine_detail", step=1)
        log.warning("payout_provider_slow", provider="acme", seconds=3.5)
        return {"ok": "yes"}

    app.add_api_route("/test/noisy", noisy)
    async with serving(app) as http:
        yield app, http


def stored(database_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        return conn.execute(
            "SELECT level, logger, event, request_id, context FROM log_entries "
            "WHERE logger = 'chainconsult.payments'"
        ).fetchall()


async def test_warnings_are_stored_with_their_request_id(
    logging_app: tuple[FastAPI, AsyncClient], database_url: str
) -> None:
    _, logging_client = logging_app
    response = await logging_client.get("/test/noisy")
    assert response.status_code == 200

    for _ in range(60):
        rows = stored(database_url)
        if rows:
            break
        await asyncio.sleep(0.1)

    assert len(rows) == 1
    level, logger, event, request_id, context = rows[0]
    assert (level, logger, event) == ("warning", "chainconsult.payments", "payout_provider_slow")
    assert request_id == response.headers["x-request-id"]
    assert context == {"provider": "acme", "seconds": 3.5}


async def test_lines_past_the_retention_period_are_pruned(
    logging_app: tuple[FastAPI, AsyncClient], database_url: str
) -> None:
    app, _ = logging_app
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO log_entries (created_at, level, logger, event, context) VALUES "
            "(now() - interval '15 days', 'error', 'old', 'ancient_failure', '{}'), "
            "(now() - interval '1 day', 'error', 'recent', 'yesterday_failure', '{}')"
        )
    writer = resources_of(app).monitoring.log_writer

    assert await writer.prune() == 1
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        events = [row[0] for row in conn.execute("SELECT event FROM log_entries").fetchall()]
    assert events == ["yesterday_failure"]
