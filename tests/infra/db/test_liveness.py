"""A pooled connection the server dropped is replaced at checkout, seen on its socket rather
than by a ping: the request that draws it never fails, and a live connection costs no round
trip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.db.liveness import dropped
from tests.conftest import make_settings
from tests.infra.db.conftest import terminate_backends


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = make_settings(
        database_url, tmp_path, DATABASE_MAX_CONNECTIONS=1, DATABASE_MAX_OVERFLOW=0
    )
    engine = build_engine(settings.database)
    yield engine
    await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_live_pooled_connection_is_reused_without_a_ping(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    trace = tmp_path / "libpq.trace"
    async with engine.connect() as connection:
        first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        pgconn = (await connection.get_raw_connection()).driver_connection.pgconn
    with trace.open("w") as out:
        # libpq's own log of every protocol message: a ping would show as a statement sent.
        pgconn.trace(out.fileno())
        try:
            again = await backend_pid(engine)
        finally:
            pgconn.untrace()

    assert again == first
    # Frontend (F) messages that carry SQL: the transaction and its query, nothing before.
    sent = [
        line.split("\t")[-1].strip()
        for line in trace.read_text().splitlines()
        if "\tF\t" in line and ("\tQuery\t" in line or "\tParse\t" in line)
    ]
    assert sent == ['"BEGIN"', '"SELECT pg_backend_pid()"', '"ROLLBACK"']


async def test_a_connection_the_server_ended_is_replaced_before_use(
    engine: AsyncEngine, database_url: str
) -> None:
    first = await backend_pid(engine)
    async with engine.connect() as connection:
        idle = (await connection.get_raw_connection()).driver_connection
    assert await asyncio.to_thread(terminate_backends, database_url) == 1
    for _ in range(100):  # the FATAL message and the close reach the socket
        if dropped(idle):
            break
        await asyncio.sleep(0.02)
    assert dropped(idle)

    # The same request that would have failed on it gets a new session.
    second = await backend_pid(engine)

    assert second != first
