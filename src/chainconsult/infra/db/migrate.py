"""Apply the schema: Alembic's app migrations shipped inside the package."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config


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
