"""`make migration m="..."`: autogenerate a migration by comparing the models with a scratch
database migrated to head (a private embedded PostgreSQL unless DATABASE_URL is set)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from chainconsult.infra.db.migrate import alembic_config, migrate
from chainconsult.infra.embedded.postgres import embedded_database
from chainconsult.infra.settings.database import DatabaseSettings


def main() -> None:
    message = " ".join(sys.argv[1:]).strip()
    if not message:
        sys.exit('usage: make migration m="what changed"')
    versions = Path(__file__).resolve().parents[2] / "migrations" / "versions"
    number = len(list(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))) + 1
    database = DatabaseSettings()
    if database.url is not None:
        _generate(database.sqlalchemy_url(), message, f"{number:04d}")
        return
    with (
        tempfile.TemporaryDirectory(prefix="ccmig") as scratch,
        embedded_database(Path(scratch)) as url,
    ):
        _generate(
            url.replace("postgresql://", "postgresql+psycopg://", 1), message, f"{number:04d}"
        )


def _generate(url: str, message: str, rev_id: str) -> None:
    migrate(url)
    command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
