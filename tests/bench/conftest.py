"""A database holding the migrated demo data, made once per worker: the bench harnesses'
self-tests copy it (BENCH_DEMO_TEMPLATE) instead of each running `chainconsult migrate` and
`demo-data` in new processes."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.cli_runner import run_cli
from tests.conftest import TEST_SECRET, MigratedDatabases


@pytest.fixture(scope="session")
def demo_template(
    migrated_databases: MigratedDatabases,
    postgres_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The name of a database with the demo data that no one connects to (so it can be
    copied); dropped with the session's other databases."""
    url = migrated_databases.create("cc_demo")
    env = {"DATABASE_URL": url, "SECRET_KEY": TEST_SECRET, "REDIS_URL": ""}
    loaded = run_cli("demo-data", env=env, cwd=tmp_path_factory.mktemp("demo"))
    assert loaded.returncode == 0, loaded.stderr
    name = make_url(url).database
    assert name is not None
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
    return name


@pytest.fixture
def demo_copies(demo_template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness under test copies the demo database rather than building its own."""
    monkeypatch.setenv("BENCH_DEMO_TEMPLATE", demo_template)
