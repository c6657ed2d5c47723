"""Alembic environment: runs on a plain (sync) psycopg connection; the URL comes from the
caller (`chainconsult migrate` or the tests), never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from chainconsult.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The job queue's tables belong to procrastinate (revision j1 applies its SQL); without
    # this, autogenerate would offer to drop them.
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
