"""`chainconsult migrate` started on several hosts at once (each node of a rolling deploy, or
replicas that migrate on start): every run succeeds and the schema is applied once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.slow


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    name = f"cc_test_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_migrations_started_on_three_hosts_at_once_all_succeed(
    empty_database: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": empty_database,
        "SECRET_KEY": TEST_SECRET,
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "chainconsult", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outcomes = [(run.wait(120), run.communicate()[0].decode()) for run in runs]

    assert [code for code, _ in outcomes] == [0, 0, 0], "\n".join(out for _, out in outcomes)
    with psycopg.connect(empty_database) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('accounts', 'procrastinate_jobs')"
        ).fetchone()
    assert len(versions) == 1
    assert tables == (2,)
