"""The job schema ships as Alembic revision j1 and matches the installed procrastinate."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import psycopg
import pytest
from alembic import command
from psycopg import sql
from sqlalchemy.engine import make_url

import chainconsult.migrations
from chainconsult.infra.db.migrate import alembic_config, migrate
from tests.infra.jobs.conftest import query

VERSIONS = Path(chainconsult.migrations.__file__).parent / "versions"


def _j1() -> object:
    spec = importlib.util.spec_from_file_location("j1", VERSIONS / "j1_job_queue_schema.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_schema_contains_every_migration_of_the_installed_procrastinate() -> None:
    """Fails after a procrastinate upgrade that brings new SQL migrations: add a revision
    applying them (their names are listed by `procrastinate schema --migrations-path`)."""
    shipped = sorted(
        item.name
        for item in resources.files("procrastinate.sql.migrations").iterdir()
        if item.name.endswith(".sql")
    )
    assert shipped[-1] == _j1().LAST_PROCRASTINATE_MIGRATION  # type: ignore[attr-defined]


@pytest.fixture
def scratch_database(postgres_server_url: str) -> Iterator[str]:
    name = f"cc_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(postgres_server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrate_creates_the_job_schema_and_it_downgrades_cleanly(scratch_database: str) -> None:
    migrate(scratch_database, echo=lambda _line: None)
    migrate(scratch_database, echo=lambda _line: None)  # idempotent
    tables = {
        row["tablename"]
        for row in query(
            scratch_database,
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'procrastinate%%'",
        )
    }
    assert tables == {
        "procrastinate_jobs",
        "procrastinate_events",
        "procrastinate_periodic_defers",
        "procrastinate_workers",
    }

    command.downgrade(alembic_config(scratch_database), "0001")
    leftovers = query(
        scratch_database,
        "SELECT proname FROM pg_proc WHERE proname LIKE 'procrastinate%%' UNION ALL"
        " SELECT tablename FROM pg_tables WHERE tablename LIKE 'procrastinate%%' UNION ALL"
        " SELECT typname FROM pg_type WHERE typname LIKE 'procrastinate%%'",
    )
    assert leftovers == []
    migrate(scratch_database, echo=lambda _line: None)
    assert query(scratch_database, "SELECT count(*) AS n FROM procrastinate_jobs") == [{"n": 0}]
