"""In-app notifications, written in the same transaction as the event they announce."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin


class Notification(IdMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_recipient_created", "recipient_id", "created_at", "id"),
        Index(
            "ix_notifications_unread",
            "recipient_id",
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    recipient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    read_at: Mapped[dt.datetime | None]


class EmailOptOut(Base):
    """A kind of email its recipient turned off (the unsubscribe link in each such email,
    chainconsult.mail.preferences). Security and account emails have no such link."""

    __tablename__ = "email_opt_outs"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
