"""The per-account live event log the event stream replays from (``Last-Event-ID``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.infra.db.declarative import Base


class LiveEvent(Base):
    """What one account's event stream sends, kept a few minutes so a reconnecting client
    replays what it missed (``Last-Event-ID`` is this id)."""

    __tablename__ = "live_events"
    __table_args__ = (
        Index("ix_live_events_account", "account_id", "id"),
        Index("ix_live_events_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
