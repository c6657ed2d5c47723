"""escrow: dispute reasons per party with their hash, and the hash the chain confirmed

Revision ID: escrow2
Revises: prefs1
Create Date: 2026-12-07 14:00:00.000000

Until now one ``milestones.dispute_reason`` held the text of whoever last asked for a dispute
transaction, sent or not. Each reason moves to its party's row (the party whose address the
confirmed Disputed event names), with the keccak-256 of the text: the arbiter is shown it only
if that is the hash on chain.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "escrow2"
down_revision: str | None = "prefs1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A milestone's ledger subject: its UUID's 16 bytes left-padded to bytes32, as 0x-hex.
_SUBJECT = "'0x' || lpad(replace(CAST(m.id AS text), '-', ''), 64, '0')"


def upgrade() -> None:
    from eth_utils.crypto import keccak

    op.add_column("milestones", sa.Column("dispute_hash", sa.String(length=66), nullable=True))
    op.create_table(
        "milestone_dispute_reasons",
        sa.Column("milestone_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details_hash", sa.String(length=66), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_milestone_dispute_reasons_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_milestone_dispute_reasons_milestone_id_milestones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "milestone_id", "account_id", name=op.f("pk_milestone_dispute_reasons")
        ),
    )
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE milestones m SET dispute_hash = e.args->>'detailsHash' "  # noqa: S608
            f"FROM chain_events e WHERE e.name = 'Disputed' AND e.subject = {_SUBJECT}"
        )
    )
    kept = bind.execute(
        sa.text(
            "SELECT m.id, m.dispute_reason, CASE WHEN lower(e.args->>'disputant') = "  # noqa: S608
            "lower(m.depositor_address) THEN p.client_id ELSE p.expert_id END "
            "FROM milestones m JOIN projects p ON p.id = m.project_id "
            f"JOIN chain_events e ON e.name = 'Disputed' AND e.subject = {_SUBJECT} "
            "WHERE m.dispute_reason IS NOT NULL"
        )
    ).all()
    for milestone_id, reason, account_id in kept:
        if account_id is None:
            continue
        bind.execute(
            sa.text(
                "INSERT INTO milestone_dispute_reasons "
                "(milestone_id, account_id, reason, details_hash) "
                "VALUES (:milestone, :account, :reason, :hash) ON CONFLICT DO NOTHING"
            ),
            {
                "milestone": milestone_id,
                "account": account_id,
                "reason": reason,
                "hash": "0x" + keccak(text=reason).hex(),
            },
        )
    op.drop_column("milestones", "dispute_reason")


def downgrade() -> None:
    op.add_column("milestones", sa.Column("dispute_reason", sa.Text(), nullable=True))
    op.execute(
        "UPDATE milestones m SET dispute_reason = r.reason FROM milestone_dispute_reasons r "
        "WHERE r.milestone_id = m.id AND r.details_hash = m.dispute_hash"
    )
    op.drop_table("milestone_dispute_reasons")
    op.drop_column("milestones", "dispute_hash")
