"""The migrations build exactly the tables the ORM declares: autogenerate against a database
migrated to head finds nothing to do. Holds the schema still when a table's mapping moves
(infra's own tables live in infra/monitoring/models.py, the rest in models/). It compares
through the same filter as `make migration` (migrations/env.py)."""

from __future__ import annotations

import uuid

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from chainconsult.infra.db.migrate import compared_with_the_orm, migrate
from chainconsult.models import Base


def test_autogenerate_finds_no_difference_at_head(database_url: str) -> None:
    # A database of its own: the shared test database also holds other tests' scratch tables.
    server = make_url(database_url).set(drivername="postgresql", database="postgres")
    name = f"cc_schema_{uuid.uuid4().hex[:10]}"
    admin_url = server.render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url, echo=lambda _line: None)
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(
                    connection,
                    opts={"compare_type": True, "include_name": compared_with_the_orm},
                )
                differences = compare_metadata(context, Base.metadata)
        finally:
            engine.dispose()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert differences == []


def test_every_table_is_in_the_metadata_migrations_see() -> None:
    # Alembic's env imports chainconsult.models; infra's tables must be registered through it.
    assert {"alerts", "log_entries", "accounts", "audit_log"} <= set(Base.metadata.tables)
