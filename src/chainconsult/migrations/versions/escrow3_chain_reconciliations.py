"""chain reconciliations: what each follower's last reconciliation with the chain found, for
the alert evaluator of every API process, whichever worker process reconciled

Revision ID: escrow3
Revises: escrow2
Create Date: 2026-12-08 00:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "escrow3"
down_revision: str | None = "escrow2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_reconciliations",
        sa.Column("follower", sa.String(length=120), nullable=False),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.Column(
            "checked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("follower", name=op.f("pk_chain_reconciliations")),
    )


def downgrade() -> None:
    op.drop_table("chain_reconciliations")
