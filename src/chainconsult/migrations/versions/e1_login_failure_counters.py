"""login failure counters

Revision ID: e1
Revises: m001
Create Date: 2026-11-26 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e1"
down_revision: str | None = "m001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failure_counters",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failure_counters")),
    )
    op.create_index(
        op.f("ix_login_failure_counters_window_started_at"),
        "login_failure_counters",
        ["window_started_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_login_failure_counters_window_started_at"), table_name="login_failure_counters"
    )
    op.drop_table("login_failure_counters")
