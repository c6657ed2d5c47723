"""Fixtures for backup tests: empty databases to restore into (dropped afterwards), a
database of its own with the demo data (a drill drops it), and a fingerprint of every row."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from chainconsult.config import Settings
from chainconsult.infra.backup.dump import USER_TABLES
from tests.conftest import make_settings

NewDatabase = Callable[[], str]


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def with_database(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def new_database(postgres_server_url: str) -> Iterator[NewDatabase]:
    """Makes empty databases on the test server; all are dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"cc_backup_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return with_database(postgres_server_url, name)

    yield make
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def backup_settings(database_url: str, tmp_path: Path, **env: str | None) -> Settings:
    values: dict[str, str | None] = {"BACKUP_URL": f"file://{tmp_path}/store", **env}
    return make_settings(database_url, tmp_path, REDIS_URL=None, **values)


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Rows and an MD5 of all their content, per table: equal fingerprints, equal data."""
    found: dict[str, tuple[int, str]] = {}
    with psycopg.connect(libpq(url)) as conn:
        for schema, table in conn.execute(USER_TABLES).fetchall():
            name = sql.Identifier(str(schema), str(table))
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
                    " FROM {} t"
                ).format(name)
            ).fetchone()
            assert row is not None
            found[f"{schema}.{table}"] = (int(row[0]), str(row[1]))
    return found


def execute(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        cursor = conn.execute(statement)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []
