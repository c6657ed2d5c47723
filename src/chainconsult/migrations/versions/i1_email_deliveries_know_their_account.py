"""email deliveries know their account

Each delivery record holds a recipient address (and subjects may hold a name), so GDPR export
and erasure must find it by the account it was sent to. Existing rows are matched by address.

Revision ID: i1
Revises: d001
Create Date: 2026-11-26 14:39:47.538771
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i1"
down_revision: str | None = "d001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("email_deliveries", sa.Column("account_id", sa.UUID(), nullable=True))
    op.create_index(
        op.f("ix_email_deliveries_account_id"), "email_deliveries", ["account_id"], unique=False
    )
    op.create_foreign_key(
        op.f("fk_email_deliveries_account_id_accounts"),
        "email_deliveries",
        "accounts",
        ["account_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.execute(
        "UPDATE email_deliveries d SET account_id = a.id FROM accounts a"
        " WHERE lower(a.email) = lower(d.recipient)"
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_email_deliveries_account_id_accounts"), "email_deliveries", type_="foreignkey"
    )
    op.drop_index(op.f("ix_email_deliveries_account_id"), table_name="email_deliveries")
    op.drop_column("email_deliveries", "account_id")
