"""Apply the schema: Alembic's app migrations shipped inside the package."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config

OUTSIDE_THE_ORM = {("index", "ix_expert_profiles_search_words")}
"""Schema objects a migration creates that the ORM does not declare: the pg_trgm index exists
only where the server has pg_trgm (models/experts.py)."""


def compared_with_the_orm(name: str | None, type_: str, _parents: object) -> bool:
    """Whether autogenerate compares this object with the ORM (``include_name``): not the job
    queue's tables (procrastinate's SQL, revision j1 applies it) nor OUTSIDE_THE_ORM, which
    it would otherwise offer to drop."""
    if type_ == "table" and (name or "").startswith("procrastinate_"):
        return False
    return (type_, name) not in OUTSIDE_THE_ORM


def alembic_config(sqlalchemy_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "chainconsult:migrations")
    # '%' is ConfigParser's interpolation character; URLs may contain it (encoded passwords).
    config.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return config


def migrate(sqlalchemy_url: str, *, echo: Callable[[str], None] = print) -> None:
    """Bring the database to the newest schema; safe to run again and from several hosts
    (Alembic takes each migration in its own transaction)."""
    echo("applying app migrations")
    command.upgrade(alembic_config(sqlalchemy_url), "head")
    echo("schema up to date")
