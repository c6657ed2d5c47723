"""marketplace invariants and list indexes

Revision ID: d001
Revises: o1
Create Date: 2026-11-26 14:05:00

Backstops in the database for invariants the services also keep under row locks, so no
future code path (or a race the locks miss) can break them:

- at most one accepted proposal per project (partial unique index);
- an expert's rating aggregates agree with each other (count, sum and the rounded average).

And the indexes the EXPLAIN tests found missing (tests/infra/db/test_marketplace_indexes.py):
the unfiltered vetting queue's order, and the audit log filtered by actor or action, whose
indexes gain the id the keyset cursor sorts by.

Nothing here blocks writes on a live table: indexes are built CONCURRENTLY (outside the
migration's transaction; a rebuilt one under a temporary name, then swapped), the check is
added NOT VALID and then validated, which takes only a SHARE UPDATE EXCLUSIVE lock.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d001"
down_revision: str | None = "o1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATING_CHECK = (
    "(rating_count = 0 AND rating_sum = 0 AND rating_avg = 0) OR "
    "(rating_count > 0 AND rating_sum BETWEEN rating_count AND 5 * rating_count "
    "AND rating_avg = round(rating_sum::numeric / rating_count, 2))"
)


# (name, columns before, columns after) of the indexes rebuilt with the cursor's id.
REBUILT = (
    ("ix_audit_log_actor_occurred", "actor_id, occurred_at", "actor_id, occurred_at, id"),
    ("ix_audit_log_action_occurred", "action, occurred_at", "action, occurred_at, id"),
)


def _rebuild(name: str, columns: str) -> None:
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_next")
    op.execute(f"CREATE INDEX CONCURRENTLY {name}_next ON audit_log ({columns})")
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(f"ALTER INDEX {name}_next RENAME TO {name}")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_proposals_one_accepted "
            "ON proposals (project_id) WHERE status = 'accepted'"
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_expert_applications_created "
            "ON expert_applications (created_at, id)"
        )
        for name, _, after in REBUILT:
            _rebuild(name, after)
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
        for name, before, _ in REBUILT:
            _rebuild(name, before)
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_expert_applications_created")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS uq_proposals_one_accepted")
