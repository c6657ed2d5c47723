"""The audit log: who did what to which resource, when, from where."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin


class AuditEntry(IdMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_occurred", "occurred_at", "id"),
        # Each ends in the id the cursor carries, so a filtered page is read in index order
        # without sorting all of an actor's (or an action's) entries.
        Index("ix_audit_log_actor_occurred", "actor_id", "occurred_at", "id"),
        Index("ix_audit_log_action_occurred", "action", "occurred_at", "id"),
        Index("ix_audit_log_resource", "resource_type", "resource_id"),
    )

    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    """The account that acted; NULL for an anonymous caller (e.g. a failed login)."""
    action: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
