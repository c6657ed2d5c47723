"""`chainconsult db-stats` on a real database: table sizes, index use, maintenance hints and
the slowest statements when pg_stat_statements is there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli_runner import run_cli
from tests.conftest import TEST_SECRET
from tests.infra.db.conftest import PrivatePostgres, libpq


def db_stats(database_url: str, tmp_path: Path, *args: str) -> str:
    env = {"DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET}
    result = run_cli("db-stats", *args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def bloated_table(database_url: str) -> Iterator[str]:
    """A table most of whose rows were deleted and not yet vacuumed."""
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE dbres_bloat (id int PRIMARY KEY, payload text) "
            "WITH (autovacuum_enabled = off)"
        )
        conn.execute(
            "INSERT INTO dbres_bloat SELECT n, repeat('x', 100) FROM generate_series(1, 5000) n"
        )
        conn.execute("DELETE FROM dbres_bloat WHERE id > 1000")
    yield "public.dbres_bloat"
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        conn.execute("DROP TABLE dbres_bloat")


def test_db_stats_reports_tables_indexes_and_a_vacuum_hint(
    database_url: str, tmp_path: Path, bloated_table: str
) -> None:
    report: dict[str, Any] = json.loads(db_stats(database_url, tmp_path, "--json"))

    tables = {f"{t['schema']}.{t['name']}": t for t in report["tables"]}
    assert tables[bloated_table]["live_rows"] == 1000
    assert tables[bloated_table]["dead_rows"] == 4000
    assert tables[bloated_table]["total_bytes"] > tables[bloated_table]["index_bytes"] > 0
    assert "public.accounts" in tables
    indexes = {index["name"] for index in report["indexes"]}
    assert {"uq_accounts_email_lower", "dbres_bloat_pkey"} <= indexes
    assert any(
        hint.startswith(f"{bloated_table}: 80% dead rows") and "VACUUM (ANALYZE)" in hint
        for hint in report["hints"]
    )


def test_db_stats_text_report_has_every_section(database_url: str, tmp_path: Path) -> None:
    output = db_stats(database_url, tmp_path)

    for section in (
        "Tables (largest first)",
        "Indexes (least used first)",
        "Slowest statements",
        "Hints",
    ):
        assert section in output
    assert "public.accounts" in output


@pytest.mark.slow
def test_db_stats_lists_slowest_statements_from_pg_stat_statements(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    with psycopg.connect(private_postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_sleep(0.3)")

    report = json.loads(db_stats(private_postgres.url, tmp_path, "--json", "--limit", "3"))
    text_report = db_stats(private_postgres.url, tmp_path)

    assert report["slowest_statements"][0]["sql"] == "SELECT pg_sleep(?)"
    assert report["slowest_statements"][0]["total_ms"] >= 300
    assert len(report["slowest_statements"]) <= 3
    assert not any("pg_stat_statements is not available" in hint for hint in report["hints"])
    assert "SELECT pg_sleep(?)" in text_report


def test_hints_say_when_autovacuum_is_off_and_when_an_index_is_dead_weight() -> None:
    from chainconsult.infra.db.stats import DatabaseStats, maintenance_hints

    big_unused = {
        "schema": "public",
        "table": "projects",
        "name": "ix_projects_legacy",
        "scans": 0,
        "bytes": 8 * 1024 * 1024,
        "is_unique": False,
        "is_primary": False,
    }
    stats = DatabaseStats(tables=[], indexes=[big_unused], slowest=[], autovacuum=False)

    hints = maintenance_hints(stats)

    assert hints[0].startswith("autovacuum is off")
    assert hints[1] == (
        "public.ix_projects_legacy on projects: never used since the statistics were reset "
        "and 8.0 MB; consider dropping it"
    )
    assert len(hints) == 2
