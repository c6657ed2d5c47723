"""two-factor login and SIWE wallets

TOTP secrets (encrypted), recovery codes (hashed), pending second login steps,
Sign-In with Ethereum nonces and the wallets an account proved by signing.

Revision ID: identity1
Revises: search1
Create Date: 2026-12-07 07:39:32.552798
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity1"
down_revision: str | None = "search1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_siwe_nonces")),
    )
    op.create_index(op.f("ix_siwe_nonces_expires_at"), "siwe_nonces", ["expires_at"], unique=False)
    op.create_table(
        "account_recovery_codes",
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_recovery_codes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_recovery_codes")),
    )
    op.create_index(
        "uq_account_recovery_codes_code",
        "account_recovery_codes",
        ["account_id", "code_hash"],
        unique=True,
    )
    op.create_table(
        "account_totp",
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_totp_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_totp")),
    )
    op.create_table(
        "account_wallets",
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_wallets_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_wallets")),
    )
    op.create_index(
        op.f("ix_account_wallets_account_id"), "account_wallets", ["account_id"], unique=False
    )
    op.create_index(
        "uq_account_wallets_address",
        "account_wallets",
        [sa.literal_column("lower(address)")],
        unique=True,
    )
    op.create_table(
        "mfa_challenges",
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_mfa_challenges_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_challenges")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mfa_challenges_token_hash")),
    )
    op.create_index(
        op.f("ix_mfa_challenges_account_id"), "mfa_challenges", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_mfa_challenges_expires_at"), "mfa_challenges", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_mfa_challenges_expires_at"), table_name="mfa_challenges")
    op.drop_index(op.f("ix_mfa_challenges_account_id"), table_name="mfa_challenges")
    op.drop_table("mfa_challenges")
    op.drop_index("uq_account_wallets_address", table_name="account_wallets")
    op.drop_index(op.f("ix_account_wallets_account_id"), table_name="account_wallets")
    op.drop_table("account_wallets")
    op.drop_table("account_totp")
    op.drop_index("uq_account_recovery_codes_code", table_name="account_recovery_codes")
    op.drop_table("account_recovery_codes")
    op.drop_index(op.f("ix_siwe_nonces_expires_at"), table_name="siwe_nonces")
    op.drop_table("siwe_nonces")
