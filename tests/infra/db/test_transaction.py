"""The retrying unit of work: racing writes keep their invariants, serialization failures,
deadlocks and connections lost before the commit are retried (and counted), a connection
lost during the commit is never replayed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chainconsult.errors import CommitOutcomeUnknown
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.session import after_commit
from chainconsult.infra.db.transaction import one_statement, run_in_transaction, unit_of_work
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings
from tests.infra.db.conftest import AppClient


def retries() -> float:
    return REGISTRY.get_sample_value("chainconsult_db_transaction_retries_total") or 0.0


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(database_url, tmp_path).database)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return build_sessionmaker(engine)


def _seed_project(url: str, proposals: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO dbres_projects (id) VALUES (1)")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO dbres_proposals (id, project_id) VALUES (%s, 1)",
                [(n,) for n in range(1, proposals + 1)],
            )


async def test_fifty_concurrent_accepts_exactly_one_wins(
    app_client: AppClient, synthetic_tables: str
) -> None:
    _seed_project(synthetic_tables, 50)
    async with app_client(DATABASE_MAX_CONNECTIONS=10) as (_, client):
        responses = await asyncio.gather(
            *(client.post(f"/test/proposals/{n}/accept") for n in range(1, 51))
        )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * 49
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"] == "application/problem+json"
    winner = next(r.json()["accepted"] for r in responses if r.status_code == 200)
    with psycopg.connect(synthetic_tables) as conn:
        rows = dict(
            conn.execute("SELECT status, count(*) FROM dbres_proposals GROUP BY status").fetchall()
        )
        accepted = conn.execute(
            "SELECT id FROM dbres_proposals WHERE status = 'accepted'"
        ).fetchall()
        project = conn.execute("SELECT status FROM dbres_projects").fetchone()
    assert rows == {"accepted": 1, "declined": 49}
    assert accepted == [(winner,)]
    assert project == ("in_progress",)


async def test_serializable_quota_holds_under_concurrency_with_retries(
    app_client: AppClient, synthetic_tables: str
) -> None:
    before = retries()
    async with app_client(DATABASE_MAX_CONNECTIONS=10) as (_, client):
        responses = await asyncio.gather(*(client.post("/test/quota/7") for _ in range(12)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 5 + [409] * 7
    with psycopg.connect(synthetic_tables) as conn:
        assert conn.execute("SELECT count(*) FROM dbres_usage").fetchone() == (5,)
    # Concurrent count-then-insert under SERIALIZABLE collides; the collisions were retried.
    assert retries() > before


async def test_forced_serialization_failure_is_retried_and_counted(
    sessionmaker: async_sessionmaker[AsyncSession], synthetic_tables: str
) -> None:
    """A real write skew: another serializable transaction reads the same rows, inserts and
    commits between our read and our write, so PostgreSQL aborts ours with 40001."""
    runs = 0
    before = retries()

    async def claim(session: AsyncSession) -> int:
        nonlocal runs
        runs += 1
        seen = (await session.execute(text("SELECT count(*) FROM dbres_usage"))).scalar_one()
        if runs == 1:
            async with await psycopg.AsyncConnection.connect(synthetic_tables) as other:
                await other.set_isolation_level(psycopg.IsolationLevel.SERIALIZABLE)
                await other.execute("SELECT count(*) FROM dbres_usage")
                await other.execute("INSERT INTO dbres_usage (account, note) VALUES (1, 'rival')")
                await other.commit()
        await session.execute(text("INSERT INTO dbres_usage (account, note) VALUES (1, 'ours')"))
        return int(seen)

    seen = await run_in_transaction(sessionmaker, claim, isolation="SERIALIZABLE")

    assert runs == 2
    assert seen == 1  # the second run saw the rival's row
    assert retries() == before + 1
    with psycopg.connect(synthetic_tables) as conn:
        notes = conn.execute("SELECT note FROM dbres_usage ORDER BY id").fetchall()
    assert notes == [("rival",), ("ours",)]


async def test_deadlock_victim_is_retried(
    sessionmaker: async_sessionmaker[AsyncSession], synthetic_tables: str
) -> None:
    with psycopg.connect(synthetic_tables, autocommit=True) as conn:
        conn.execute("INSERT INTO dbres_counters (id) VALUES (1), (2)")
    runs = 0
    before = retries()
    other = await psycopg.AsyncConnection.connect(synthetic_tables)
    try:
        # The rival holds row 2 and will want row 1.
        await other.execute("SET deadlock_timeout = '5s'")
        await other.execute("UPDATE dbres_counters SET value = value + 10 WHERE id = 2")

        async def transfer(session: AsyncSession) -> None:
            nonlocal runs
            runs += 1
            # We detect the deadlock first, so we are the victim.
            await session.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
            await session.execute(text("UPDATE dbres_counters SET value = value + 1 WHERE id = 1"))
            if runs == 1:
                rival.set_result(None)
                await asyncio.sleep(0.2)  # the rival now waits for row 1
            await session.execute(text("UPDATE dbres_counters SET value = value + 1 WHERE id = 2"))

        rival: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def rival_takes_row_one() -> None:
            await rival
            await other.execute("UPDATE dbres_counters SET value = value + 10 WHERE id = 1")
            await other.commit()

        rival_task = asyncio.create_task(rival_takes_row_one())
        await run_in_transaction(sessionmaker, transfer)
        await rival_task
    finally:
        await other.close()

    assert runs == 2
    assert retries() == before + 1
    with psycopg.connect(synthetic_tables) as conn:
        values = conn.execute("SELECT id, value FROM dbres_counters ORDER BY id").fetchall()
    assert values == [(1, 11), (2, 11)]


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "backend did not exit"
            time.sleep(0.02)


async def test_connection_lost_before_commit_is_retried_on_a_new_connection(
    sessionmaker: async_sessionmaker[AsyncSession], synthetic_tables: str
) -> None:
    pids: list[int] = []
    before = retries()

    async def insert(session: AsyncSession) -> None:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        pids.append(pid)
        if len(pids) == 1:
            await asyncio.to_thread(_terminate, synthetic_tables, pid)
        await session.execute(text("INSERT INTO dbres_usage (account) VALUES (3)"))

    await run_in_transaction(sessionmaker, insert)

    assert len(pids) == 2
    assert pids[0] != pids[1]
    assert retries() == before + 1
    with psycopg.connect(synthetic_tables) as conn:
        assert conn.execute("SELECT count(*) FROM dbres_usage").fetchone() == (1,)


@pytest.fixture
def kill_on_commit(engine: AsyncEngine, synthetic_tables: str) -> Iterator[list[int]]:
    """Terminate the backend right before the COMMIT reaches it: the client cannot tell
    whether the commit happened. Append the pid to the returned list to arm it."""
    armed: list[int] = []

    def on_commit(conn: Any) -> None:
        if armed:
            _terminate(synthetic_tables, armed.pop())

    event.listen(engine.sync_engine, "commit", on_commit)
    yield armed
    event.remove(engine.sync_engine, "commit", on_commit)


async def test_connection_lost_during_commit_is_never_replayed(
    sessionmaker: async_sessionmaker[AsyncSession],
    synthetic_tables: str,
    kill_on_commit: list[int],
) -> None:
    runs = 0
    callbacks = 0
    before = retries()

    async def effect() -> None:
        nonlocal callbacks
        callbacks += 1

    async def insert(session: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        kill_on_commit.append((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        after_commit(session, effect)
        await session.execute(text("INSERT INTO dbres_usage (account) VALUES (4)"))

    with pytest.raises(CommitOutcomeUnknown):
        await run_in_transaction(sessionmaker, insert)

    assert runs == 1
    assert callbacks == 0
    assert retries() == before


async def test_commit_outcome_unknown_is_a_503_problem_without_retry_after(
    app_client: AppClient, synthetic_tables: str
) -> None:
    async with app_client() as (app, client):
        armed: list[bool] = [True]

        def on_commit(conn: Any) -> None:
            if armed:
                armed.pop()
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                _terminate(synthetic_tables, pid)

        event.listen(resources_of(app).engine.sync_engine, "commit", on_commit)
        response = await client.post("/test/quota/9")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/commit-outcome-unknown")
    assert "retry-after" not in response.headers


async def test_connection_lost_during_a_read_only_commit_is_a_plain_retryable_503(
    app_client: AppClient, synthetic_tables: str
) -> None:
    """Nothing was written, so there is no outcome to be unsure about: retry, not check."""
    async with app_client() as (app, client):
        armed: list[bool] = [True]

        def on_commit(conn: Any) -> None:
            if armed:
                armed.pop()
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                _terminate(synthetic_tables, pid)

        event.listen(resources_of(app).engine.sync_engine, "commit", on_commit)
        response = await client.get("/test/sleep", params={"seconds": 0})

    assert response.status_code == 503
    assert response.json()["type"].endswith("/database-unavailable")
    assert int(response.headers["retry-after"]) >= 1


async def test_after_commit_runs_once_after_the_successful_attempt(
    sessionmaker: async_sessionmaker[AsyncSession], synthetic_tables: str
) -> None:
    effects: list[int] = []
    runs = 0

    async def work(session: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        attempt = runs

        async def effect() -> None:
            effects.append(attempt)

        after_commit(session, effect)
        if runs == 1:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await asyncio.to_thread(_terminate, synthetic_tables, pid)
        await session.execute(text("SELECT 1"))

    await run_in_transaction(sessionmaker, work)

    assert effects == [2]


async def test_unit_of_work_refuses_a_session_with_unsaved_changes(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    from chainconsult.models import Account

    async with sessionmaker() as session:
        session.add(Account(email="x@example.com", password_hash="x", display_name="X"))
        with pytest.raises(RuntimeError, match="unsaved changes"):
            await unit_of_work(session, lambda s: asyncio.sleep(0))


async def test_one_statement_commits_without_a_transaction_block(
    sessionmaker: async_sessionmaker[AsyncSession], synthetic_tables: str
) -> None:
    async with sessionmaker() as session:
        row = await one_statement(
            session,
            text("INSERT INTO dbres_usage (account) VALUES (:account) RETURNING account"),
            {"account": 7},
        )
        # Autocommit: the row is visible to another connection at once, and the session
        # holds no transaction (nor its connection) afterwards.
        with psycopg.connect(synthetic_tables) as conn:
            stored = conn.execute("SELECT account FROM dbres_usage").fetchall()
        assert not session.in_transaction()

    assert row is not None
    assert row.account == 7
    assert stored == [(7,)]


async def test_one_statement_whose_connection_is_lost_has_an_unknown_outcome(
    sessionmaker: async_sessionmaker[AsyncSession], synthetic_tables: str
) -> None:
    async with sessionmaker() as session:
        with pytest.raises(CommitOutcomeUnknown):
            # The backend ends itself while running the statement: the client cannot tell
            # whether a write in it committed, so nothing may replay it.
            await one_statement(session, text("SELECT pg_terminate_backend(pg_backend_pid())"), {})
        # The session stays usable for the rest of the request.
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


async def test_the_connection_one_statement_used_goes_back_to_transactions(
    database_url: str, tmp_path: Path
) -> None:
    # One pooled connection: the next checkout is the one the statement ran on. Left in
    # autocommit, every later unit of work on it would lose its atomicity.
    engine = build_engine(
        make_settings(
            database_url, tmp_path, DATABASE_MAX_CONNECTIONS=1, DATABASE_MAX_OVERFLOW=0
        ).database
    )
    try:
        async with build_sessionmaker(engine)() as session:
            await one_statement(session, text("SELECT 1"), {})
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            await connection.execute(text("SELECT 1"))
            assert raw.autocommit is False
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    finally:
        await engine.dispose()
