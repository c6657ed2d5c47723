"""escrow: milestones and the chain event follower's cursor, block hashes and event ledger

Milestones of accepted projects with their escrow state as confirmed on chain (token amounts
as NUMERIC(78, 0)); chain_cursors, chain_blocks and chain_events let the follower resume,
detect reorganisations by block hash and apply each log once.

Revision ID: escrow1
Revises: recovery1
Create Date: 2026-12-07 07:45:27.667736
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "escrow1"
down_revision: str | None = "recovery1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_blocks",
        sa.Column("follower", sa.String(length=120), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("follower", "block_number", name=op.f("pk_chain_blocks")),
    )
    op.create_table(
        "chain_cursors",
        sa.Column("follower", sa.String(length=120), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("follower", name=op.f("pk_chain_cursors")),
    )
    op.create_table(
        "chain_events",
        sa.Column("follower", sa.String(length=120), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "applied_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("follower", "tx_hash", "log_index", name=op.f("pk_chain_events")),
    )
    op.create_index(
        "ix_chain_events_block", "chain_events", ["follower", "block_number"], unique=False
    )
    op.create_index(
        "ix_chain_events_subject",
        "chain_events",
        ["follower", "subject", "block_number", "log_index"],
        unique=False,
    )
    op.create_table(
        "milestones",
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("token_symbol", sa.String(length=16), nullable=True),
        sa.Column("token_address", sa.String(length=42), nullable=True),
        sa.Column("amount_units", sa.Numeric(precision=78, scale=0), nullable=True),
        sa.Column("payout_address", sa.String(length=42), nullable=True),
        sa.Column("termination_time", sa.BigInteger(), nullable=True),
        sa.Column("depositor_address", sa.String(length=42), nullable=True),
        sa.Column("funded_block", sa.BigInteger(), nullable=True),
        sa.Column("settled_block", sa.BigInteger(), nullable=True),
        sa.Column("payee_units", sa.Numeric(precision=78, scale=0), nullable=True),
        sa.Column("client_units", sa.Numeric(precision=78, scale=0), nullable=True),
        sa.Column("platform_fee_units", sa.Numeric(precision=78, scale=0), nullable=True),
        sa.Column("arbiter_fee_units", sa.Numeric(precision=78, scale=0), nullable=True),
        sa.Column("dispute_reason", sa.Text(), nullable=True),
        sa.Column("resolution_share_bps", sa.Integer(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolution_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'funded', 'released', 'disputed', 'resolved', 'refunded')",
            name=op.f("ck_milestones_status_known"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_milestones_amount_positive")),
        sa.CheckConstraint(
            "resolution_share_bps IS NULL OR resolution_share_bps BETWEEN 0 AND 10000",
            name=op.f("ck_milestones_share_range"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_milestones_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestones")),
    )
    op.create_index(
        "uq_milestones_project_position", "milestones", ["project_id", "position"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_milestones_project_position", table_name="milestones")
    op.drop_table("milestones")
    op.drop_index("ix_chain_events_subject", table_name="chain_events")
    op.drop_index("ix_chain_events_block", table_name="chain_events")
    op.drop_table("chain_events")
    op.drop_table("chain_cursors")
    op.drop_table("chain_blocks")
