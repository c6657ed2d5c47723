"""job queue schema (procrastinate 3.10.0)

The schema procrastinate documents for a new database, from a verbatim copy of the release's
``schema.sql`` kept next to this file: reading it from the installed package would make this
revision change under our feet when the library is upgraded. A procrastinate release that
adds migrations (``procrastinate schema --migrations-path``) gets a new revision applying the
new files; tests/infra/jobs/test_schema.py fails until it exists.

Revision ID: j1
Revises: e1
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "j1"
down_revision: str | None = "e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA_FILE = Path(__file__).with_name("j1_procrastinate_3_10_0.sql")
LAST_PROCRASTINATE_MIGRATION = "03.04.00_50_post_add_retry_failed_job_procedure.sql"
"""The newest of procrastinate's own migration files that this schema already contains."""


def upgrade() -> None:
    # The raw driver connection: the file has '%' and ':' that SQLAlchemy's text() would
    # take for parameters; without parameters psycopg sends the script as it is.
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    raw.execute(SCHEMA_FILE.read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE item record;
        BEGIN
            FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'
            LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || item.signature || ' CASCADE';
            END LOOP;
        END $$;
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
            procrastinate_job_status CASCADE;
        """
    )
