"""email opt-outs: the kinds of email each person turned off by its unsubscribe link

Revision ID: prefs1
Revises: escrow1
Create Date: 2026-12-07 11:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "prefs1"
down_revision: str | None = "escrow1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_opt_outs",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_email_opt_outs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "kind", name=op.f("pk_email_opt_outs")),
    )


def downgrade() -> None:
    op.drop_table("email_opt_outs")
