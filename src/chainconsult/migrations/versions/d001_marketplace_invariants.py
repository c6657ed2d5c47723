"""marketplace invariants: one accepted proposal per project, consistent rating aggregates

Revision ID: d001
Revises: m001
Create Date: 2026-11-26 14:05:00

Backstops in the database for invariants the services also keep under row locks, so no
future code path (or a race the locks miss) can break them:

- at most one accepted proposal per project (partial unique index);
- an expert's rating aggregates agree with each other (count, sum and the rounded average).

Both are added without blocking writes on a live table: the index CONCURRENTLY (outside the
migration's transaction), the check NOT VALID and then validated, which takes only a SHARE
UPDATE EXCLUSIVE lock while it scans.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d001"
down_revision: str | None = "m001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATING_CHECK = (
    "(rating_count = 0 AND rating_sum = 0 AND rating_avg = 0) OR "
    "(rating_count > 0 AND rating_sum BETWEEN rating_count AND 5 * rating_count "
    "AND rating_avg = round(rating_sum::numeric / rating_count, 2))"
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_proposals_one_accepted "
            "ON proposals (project_id) WHERE status = 'accepted'"
        )
    op.execute(
        "ALTER TABLE expert_profiles ADD CONSTRAINT ck_expert_profiles_rating_consistent "
        f"CHECK ({RATING_CHECK}) NOT VALID"
    )
    op.execute(
        "ALTER TABLE expert_profiles VALIDATE CONSTRAINT ck_expert_profiles_rating_consistent"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE expert_profiles DROP CONSTRAINT IF EXISTS ck_expert_profiles_rating_consistent"
    )
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS uq_proposals_one_accepted")
