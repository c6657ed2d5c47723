"""What the chain event follower (infra/chain) remembers: where each follower is, the hashes
of the blocks it has seen, every event it has applied (once, by tx hash and log index), and
what its last reconciliation with the chain found."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.infra.db.declarative import Base


class ChainCursor(Base):
    """The last block a follower has fully applied, with its hash (reorg detection)."""

    __tablename__ = "chain_cursors"

    follower: Mapped[str] = mapped_column(String(120), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ChainReconciliation(Base):
    """The differences a follower's last reconciliation found between the database and the
    chain. In the database, not only in a metric: the alert evaluator of every API process
    reads it, whichever process (an embedded or a standalone worker) reconciled."""

    __tablename__ = "chain_reconciliations"

    follower: Mapped[str] = mapped_column(String(120), primary_key=True)
    differences: Mapped[int] = mapped_column(Integer)
    checked_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ChainBlock(Base):
    """Hash of a block a follower applied: each block with events, and each cursor block."""

    __tablename__ = "chain_blocks"

    follower: Mapped[str] = mapped_column(String(120), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    block_hash: Mapped[str] = mapped_column(String(66))


class ChainEvent(Base):
    """One applied log. A reorganisation that removes its block deletes the row (and the
    follower's handler undoes its effects); a log that comes back is applied again."""

    __tablename__ = "chain_events"
    __table_args__ = (
        Index("ix_chain_events_subject", "follower", "subject", "block_number", "log_index"),
        Index("ix_chain_events_block", "follower", "block_number"),
    )

    follower: Mapped[str] = mapped_column(String(120), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    log_index: Mapped[int] = mapped_column(primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    name: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(120))
    """What the event is about, as the handler names it (the escrow: the milestone id)."""
    args: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """Decoded arguments: integers as decimal strings, bytes as 0x-hex."""
    applied_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
