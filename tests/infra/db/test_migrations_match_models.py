"""The migrations build exactly the tables the ORM declares: autogenerate against a database
migrated to head finds nothing to do. Holds the schema still when a table's mapping moves
(infra's own tables live in infra/monitoring/models.py, the rest in models/)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from chainconsult.models import Base

# Created by its migration only where pg_trgm exists, so the ORM does not declare it
# (models/experts.py).
OUTSIDE_THE_ORM = {("index", "ix_expert_profiles_search_words")}


def _compared(name: str | None, type_: str, _parents: object) -> bool:
    # The job queue's tables come from procrastinate's SQL, not the ORM (migrations/env.py).
    if type_ == "table" and (name or "").startswith("procrastinate_"):
        return False
    return (type_, name) not in OUTSIDE_THE_ORM


def test_autogenerate_finds_no_difference_at_head(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "include_name": _compared},
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_every_table_is_in_the_metadata_migrations_see() -> None:
    # Alembic's env imports chainconsult.models; infra's tables must be registered through it.
    assert {"alerts", "log_entries", "accounts", "audit_log"} <= set(Base.metadata.tables)
