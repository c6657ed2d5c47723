"""Done-when 5: `chainconsult demo-data` loads a consistent marketplace and is idempotent.
(Its speed is measured by bench/demo_data.py, not asserted here.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_runner import run_cli
from tests.conftest import TEST_SECRET
from tests.market import query

TABLES = ("accounts", "expert_applications", "expert_profiles", "projects", "proposals", "reviews")


def run_demo_data(database_url: str, cwd: Path) -> str:
    env = {
        "DATABASE_URL": database_url.replace("+psycopg", ""),
        "SECRET_KEY": TEST_SECRET,
        "REDIS_URL": "",
    }
    result = run_cli("demo-data", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def counts(database_url: str) -> dict[str, int]:
    return {
        table: int(query(database_url, f"SELECT count(*) FROM {table}")[0][0]) for table in TABLES
    }


@pytest.mark.slow
def test_demo_data_loads_a_consistent_marketplace_once(database_url: str, tmp_path: Path) -> None:
    run_demo_data(database_url, tmp_path)
    loaded = counts(database_url)
    second = run_demo_data(database_url, tmp_path)

    assert loaded["expert_profiles"] == 200
    assert loaded["projects"] == 500
    assert loaded["accounts"] == 300
    assert loaded["proposals"] > 1000
    assert loaded["reviews"] > 50
    assert counts(database_url) == loaded
    assert "demo data: 0 rows added" in second
    # Ratings in the directory agree with the reviews behind them.
    mismatched = query(
        database_url,
        "SELECT p.id FROM expert_profiles p LEFT JOIN "
        "(SELECT expert_id, count(*) n, sum(rating) s FROM reviews GROUP BY expert_id) r "
        "ON r.expert_id = p.id "
        "WHERE p.rating_count <> coalesce(r.n, 0) OR p.rating_sum <> coalesce(r.s, 0) "
        "OR p.rating_avg <> coalesce(round(r.s::numeric / r.n, 2), 0)",
    )
    assert mismatched == []
    # The data obeys the marketplace's own rules: quotas, one accepted proposal per hire.
    over_quota = query(
        database_url,
        "SELECT a.id FROM accounts a JOIN projects p ON p.client_id = a.id "
        "WHERE p.status = 'open' GROUP BY a.id, a.plan "
        "HAVING count(*) > CASE a.plan WHEN 'free' THEN 2 WHEN 'pro' THEN 20 ELSE 1000000 END",
    )
    assert over_quota == []
    hires = query(
        database_url,
        "SELECT count(*) FROM projects p JOIN proposals pr ON pr.project_id = p.id "
        "AND pr.status = 'accepted' AND pr.expert_id = p.expert_id "
        "WHERE p.status IN ('in_progress', 'completed')",
    )
    in_work = query(
        database_url,
        "SELECT count(*) FROM projects WHERE status IN ('in_progress', 'completed')",
    )
    assert hires == in_work


def test_demo_data_on_an_unmigrated_database_says_to_migrate(
    postgres_server_url: str, tmp_path: Path
) -> None:
    import uuid

    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"cc_demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        env = {"DATABASE_URL": url, "SECRET_KEY": TEST_SECRET, "REDIS_URL": ""}
        result = run_cli("demo-data", env=env, cwd=tmp_path)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        'error: the schema is missing or old (relation "accounts" does not exist); '
        "run `chainconsult migrate`"
    )
