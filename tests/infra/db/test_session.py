"""A request's session is closed only when it has something to close (a read answered by the
cache skips the close and its cost); the connection of a session that queried goes back to
the pool whatever the outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.pool import pool_status
from chainconsult.infra.db.session import (
    after_commit,
    lazily_closed,
    on_rollback,
    transaction,
)
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


async def test_work_outside_a_request_commits_then_runs_its_after_commit_callbacks(
    engine: AsyncEngine,
) -> None:
    sessionmaker = build_sessionmaker(engine)
    ran: list[str] = []

    async def seen_committed() -> None:
        # Another connection sees the row: the callback runs after the COMMIT.
        async with engine.connect() as other:
            found = await other.execute(text("SELECT count(*) FROM tx_outside WHERE id = 1"))
            ran.append(f"committed rows: {found.scalar()}")

    async with engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS tx_outside (id int PRIMARY KEY)"))
        await setup.execute(text("DELETE FROM tx_outside"))
    async with transaction(sessionmaker) as session:
        await session.execute(text("INSERT INTO tx_outside VALUES (1)"))
        after_commit(session, seen_committed)

    async def failing_step() -> None:
        async with transaction(sessionmaker) as failing:
            await failing.execute(text("INSERT INTO tx_outside VALUES (2)"))
            after_commit(failing, seen_committed)
            raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        await failing_step()

    async with engine.begin() as check:
        rows = (await check.execute(text("SELECT id FROM tx_outside ORDER BY id"))).all()
        await check.execute(text("DROP TABLE tx_outside"))
    assert [row[0] for row in rows] == [1]
    assert ran == ["committed rows: 1"]
    assert pool_status(engine).checked_out == 0


async def test_on_rollback_callbacks_run_only_when_the_transaction_does_not_commit(
    engine: AsyncEngine,
) -> None:
    sessionmaker = build_sessionmaker(engine)
    undone: list[str] = []

    def undo(what: str) -> Callable[[], Awaitable[None]]:
        async def callback() -> None:
            undone.append(what)

        return callback

    async with transaction(sessionmaker) as session:
        await session.execute(text("SELECT 1"))
        on_rollback(session, undo("committed"))

    async def failing_step() -> None:
        async with transaction(sessionmaker) as failing:
            await failing.execute(text("SELECT 1"))
            on_rollback(failing, undo("failed step"))
            raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        await failing_step()

    async def refused_commit() -> None:
        async with transaction(sessionmaker) as refused:
            # Fails at COMMIT, once the deferred check runs.
            await refused.execute(
                text(
                    "CREATE TEMPORARY TABLE tx_refused (id int UNIQUE DEFERRABLE"
                    " INITIALLY DEFERRED) ON COMMIT DROP"
                )
            )
            await refused.execute(text("INSERT INTO tx_refused VALUES (1), (1)"))
            on_rollback(refused, undo("refused commit"))

    with pytest.raises(IntegrityError):
        await refused_commit()
    assert undone == ["failed step", "refused commit"]
