"""Alembic environment: runs on a plain (sync) psycopg connection; the URL comes from the
caller (`chainconsult migrate` or the tests), never from a file."""

from __future__ import annotations

import sys
import time

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from chainconsult.infra.db.migrate import compared_with_the_orm
from chainconsult.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 0x63636D6967
"""Key of the session-level advisory lock every `migrate` holds while it runs: nodes of a
rolling deploy may all migrate on start, and without it the second one re-applies what the
first is applying and fails on "relation already exists"."""
LOCK_POLL_SECONDS = 0.5


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    # Session-level, so it outlives each migration's own transaction; a run that waited for
    # it then finds the schema at head and has nothing left to do.
    _take_migration_lock(connection)
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            transaction_per_migration=True,
            include_name=compared_with_the_orm,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        _statement(connection, "SELECT pg_advisory_unlock(:key)")


def _take_migration_lock(connection: Connection) -> None:
    """Polls instead of blocking in pg_advisory_lock: a session waiting inside a statement
    holds a snapshot, and CREATE INDEX CONCURRENTLY in the running migration waits for every
    such snapshot to go away, which would deadlock the two runs."""
    waited = False
    while not _statement(connection, "SELECT pg_try_advisory_lock(:key)"):
        if not waited:
            print("waiting for another `migrate` to finish", file=sys.stderr)
            waited = True
        time.sleep(LOCK_POLL_SECONDS)


def _statement(connection: Connection, sql: str) -> object:
    began = not connection.in_transaction()
    value = connection.execute(text(sql), {"key": MIGRATION_LOCK}).scalar()
    if began:
        # End the implicit transaction at once: the lock belongs to the session, and each
        # migration must still run in a transaction of its own.
        connection.commit()
    return value


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
