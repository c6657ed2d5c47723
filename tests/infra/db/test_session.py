"""A request's session is closed only when it has something to close (a read answered by the
cache skips the close and its cost); the connection of a session that queried goes back to
the pool whatever the outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.pool import pool_status
from chainconsult.infra.db.session import lazily_closed
from tests.conftest import make_settings


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(database_url, tmp_path).database)
    yield engine
    await engine.dispose()


async def test_session_that_queried_returns_its_connection(engine: AsyncEngine) -> None:
    sessionmaker = build_sessionmaker(engine)
    async with lazily_closed(sessionmaker()) as session:
        assert (await session.execute(text("SELECT 1"))).scalar() == 1
        assert pool_status(engine).checked_out == 1
    assert not session.in_transaction()
    assert pool_status(engine).checked_out == 0

    async def failing_handler() -> None:
        async with lazily_closed(sessionmaker()) as failing:
            sessions.append(failing)
            await failing.execute(text("SELECT 1"))
            raise RuntimeError("handler failed")

    sessions: list[AsyncSession] = []
    with pytest.raises(RuntimeError):
        await failing_handler()
    failing = sessions[0]
    assert not failing.in_transaction()
    assert pool_status(engine).checked_out == 0
