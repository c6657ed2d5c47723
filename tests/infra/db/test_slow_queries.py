"""A deliberately slow query shows in the log (normalized SQL, duration, request id), in the
metrics and in the top-N list for detailed health; pg_stat_statements when the server has
it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY

from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.db.statement_timing import (
    SlowQueryLog,
    normalize_sql,
    server_slowest_statements,
    slow_queries,
    slow_query_provider,
)
from chainconsult.infra.resources import resources_of
from tests.conftest import make_settings
from tests.infra.db.conftest import AppClient, PrivatePostgres


class JsonLines(logging.Handler):
    """Collects log lines as the app's own formatter renders them (JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        formatter = logging.getLogger().handlers[0].formatter
        assert formatter is not None
        self.lines.append(json.loads(formatter.format(record)))


@pytest.fixture
def db_log() -> Iterator[JsonLines]:
    handler = JsonLines()
    logger = logging.getLogger("chainconsult.db")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_slow_query_is_logged_counted_and_listed(
    app_client: AppClient, db_log: JsonLines
) -> None:
    slow_before = metric("chainconsult_db_slow_queries_total")
    timed_before = metric("chainconsult_db_query_duration_seconds_count")
    async with app_client(SLOW_QUERY_MS=100) as (app, client):
        fast = await client.get("/test/sleep", params={"seconds": 0})
        slow = await client.get(
            "/test/sleep", params={"seconds": 0.25}, headers={"X-Request-ID": "slow-request-0001"}
        )
        listed = slow_queries(resources_of(app).engine)

    assert fast.status_code == slow.status_code == 200
    lines = [line for line in db_log.lines if line["event"] == "slow_query"]
    assert len(lines) == 1
    line = lines[0]
    assert line["sql"] == "SELECT pg_sleep(?)"
    assert line["request_id"] == "slow-request-0001"
    assert line["level"] == "warning"
    assert 250 <= float(str(line["duration_ms"])) < 2000
    assert metric("chainconsult_db_slow_queries_total") == slow_before + 1
    # Every statement is timed, fast or slow.
    assert metric("chainconsult_db_query_duration_seconds_count") >= timed_before + 2
    assert listed[0]["sql"] == "SELECT pg_sleep(?)"
    assert listed[0]["count"] == 1
    assert listed[0]["last_request_id"] == "slow-request-0001"
    assert listed[0]["max_ms"] >= 250


async def test_statement_cancelled_by_timeout_counts_as_slow(
    app_client: AppClient, db_log: JsonLines
) -> None:
    async with app_client(SLOW_QUERY_MS=50, DATABASE_STATEMENT_TIMEOUT=150) as (app, client):
        response = await client.get("/test/sleep", params={"seconds": 3})
        listed = slow_queries(resources_of(app).engine)

    assert response.status_code == 503
    assert [line["sql"] for line in db_log.lines] == ["SELECT pg_sleep(?)"]
    assert listed[0]["max_ms"] >= 150


def test_normalized_sql_groups_statements_that_differ_only_in_values() -> None:
    one = normalize_sql("SELECT * FROM t WHERE a = 1 AND b = 'x''y'\n  AND c IN (1, 2, 3)")
    two = normalize_sql("SELECT * FROM t WHERE a = 22 AND b = 'z' AND c IN (4,5)")

    assert one == two == "SELECT * FROM t WHERE a = ? AND b = ? AND c IN (...)"
    assert normalize_sql("SELECT x FROM t WHERE id = %(id_1)s LIMIT %(param_1)s") == (
        "SELECT x FROM t WHERE id = ? LIMIT ?"
    )
    assert normalize_sql("SELECT col_1 FROM t2 WHERE a IN (__[POSTCOMPILE_a_1])") == (
        "SELECT col_1 FROM t2 WHERE a IN (?)"
    )


def test_slow_query_list_keeps_only_the_slowest_shapes_when_full() -> None:
    log = SlowQueryLog(threshold_ms=10, capacity=3)
    for number, duration in enumerate([50.0, 20.0, 30.0, 40.0, 5.0]):
        log.record(f"SELECT {number}", duration, None)
    log.record("SELECT 0", 70.0, "req")

    top = log.top()
    assert [(entry.sql, entry.max_ms) for entry in top] == [
        ("SELECT 0", 70.0),
        ("SELECT 3", 40.0),
        ("SELECT 2", 30.0),
    ]
    assert top[0].count == 2
    assert top[0].last_request_id == "req"


@pytest.mark.slow
async def test_pg_stat_statements_lists_the_slowest_statements_when_available(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    with psycopg.connect(private_postgres.url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    url = private_postgres.url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = build_engine(make_settings(url, tmp_path).database)
    try:
        assert await server_slowest_statements(engine) is None

        with psycopg.connect(private_postgres.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
            conn.execute("SELECT pg_sleep(0.2)")
        listed = await server_slowest_statements(engine, limit=5)
    finally:
        await engine.dispose()

    assert listed is not None
    assert listed[0]["sql"] == "SELECT pg_sleep(?)"
    assert listed[0]["calls"] == 1
    assert listed[0]["total_ms"] >= 200


async def test_provider_for_detailed_health_lists_this_process_first(
    app_client: AppClient,
) -> None:
    async with app_client(SLOW_QUERY_MS=50) as (app, client):
        provider = slow_query_provider(resources_of(app).engine)
        before = await provider(5)
        await client.get("/test/sleep", params={"seconds": 0.1})
        after = await provider(5)

    # The test database has no pg_stat_statements extension: nothing before the slow query.
    assert before == []
    assert after[0]["sql"] == "SELECT pg_sleep(?)"
    assert after[0]["duration_ms"] >= 100
    assert after[0]["at"] is not None
