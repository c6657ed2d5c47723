"""Milestones of an accepted project and their escrow state as last confirmed on chain.

Token amounts are integers in token units (NUMERIC(78, 0) holds any uint256); ``amount`` is
the milestone's price in the project's currency, a decimal with two places."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin, TimestampMixin

TokenUnits = Numeric(78, 0)


class MilestoneStatus(StrEnum):
    draft = "draft"
    funded = "funded"
    released = "released"
    disputed = "disputed"
    resolved = "resolved"
    refunded = "refunded"


class Milestone(IdMixin, TimestampMixin, Base):
    __tablename__ = "milestones"
    __table_args__ = (
        Index("uq_milestones_project_position", "project_id", "position", unique=True),
        CheckConstraint(
            "status IN ('draft', 'funded', 'released', 'disputed', 'resolved', 'refunded')",
            name="status_known",
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "resolution_share_bps IS NULL OR resolution_share_bps BETWEEN 0 AND 10000",
            name="share_range",
        ),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    due_date: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(20), default=MilestoneStatus.draft)

    # Set when the client asks for the deposit transactions: the terms the deposit must carry.
    token_symbol: Mapped[str | None] = mapped_column(String(16))
    token_address: Mapped[str | None] = mapped_column(String(42))
    amount_units: Mapped[Decimal | None] = mapped_column(TokenUnits)
    payout_address: Mapped[str | None] = mapped_column(String(42))
    termination_time: Mapped[int | None] = mapped_column(BigInteger)

    # The chain's view, from confirmed events only (escrow/projection.py).
    depositor_address: Mapped[str | None] = mapped_column(String(42))
    funded_block: Mapped[int | None] = mapped_column(BigInteger)
    settled_block: Mapped[int | None] = mapped_column(BigInteger)
    """Block of the release, resolution or refund."""
    payee_units: Mapped[Decimal | None] = mapped_column(TokenUnits)
    client_units: Mapped[Decimal | None] = mapped_column(TokenUnits)
    platform_fee_units: Mapped[Decimal | None] = mapped_column(TokenUnits)
    arbiter_fee_units: Mapped[Decimal | None] = mapped_column(TokenUnits)
    dispute_hash: Mapped[str | None] = mapped_column(String(66))
    """The confirmed dispute's detailsHash (0x-hex): which party's reason the chain holds."""

    resolution_share_bps: Mapped[int | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolution_tx_hash: Mapped[str | None] = mapped_column(String(66))


class MilestoneDisputeReason(Base):
    """The reason a party gave when it asked for a milestone's dispute transaction, with the
    keccak-256 that transaction carries. One per party: until the dispute is confirmed both
    may ask, and the arbiter is shown the one whose hash the chain recorded."""

    __tablename__ = "milestone_dispute_reasons"

    milestone_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("milestones.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(Text)
    details_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
