"""Alerts raised by the built-in rules, and the warnings and errors kept for the dashboard."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.infra.db.declarative import Base, IdMixin, utcnow


class Alert(IdMixin, Base):
    """One occurrence of an alert: it fires, may be acknowledged, and resolves. The same
    fingerprint (rule and labels) firing again after it resolved is a new row, so the history
    stays readable; while it fires there is at most one row per fingerprint."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_firing_fingerprint",
            "fingerprint",
            unique=True,
            postgresql_where=text("status = 'firing'"),
        ),
        Index("ix_alerts_status_last_seen", "status", "last_seen_at"),
        CheckConstraint("severity IN ('critical', 'high', 'medium', 'low')", name="severity_known"),
        CheckConstraint("status IN ('firing', 'resolved')", name="status_known"),
    )

    fingerprint: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None]
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    notified_channels: Mapped[list[str]] = mapped_column(JSONB, default=list)
    """Where the firing notice went (pagerduty, webhook), so the resolution goes there too."""


class LogEntry(Base):
    """A warning or error line kept when LOG_TO_DATABASE is on."""

    __tablename__ = "log_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    level: Mapped[str] = mapped_column(String(16))
    logger: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
