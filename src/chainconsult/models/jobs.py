"""What the job engine does not keep itself: the error text of failed attempts, and the
outcome of every email, keyed by the idempotency key its job carries."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin


class JobFailure(Base):
    """One failed attempt of a job. procrastinate records that a job failed, not why; the
    worker writes the why here so operators can read it next to the job."""

    __tablename__ = "job_failures"
    __table_args__ = (Index("ix_job_failures_created_at", "created_at"),)

    # Written by the worker with plain SQL, so the database numbers the rows.
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger, index=True)
    task_name: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(128))
    attempt: Mapped[int]
    """1 for the first run of the job."""
    will_retry: Mapped[bool]
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class DeliveryStatus(StrEnum):
    sending = "sending"
    """An attempt started; its outcome is not known (yet, or ever: the worker died)."""
    sent = "sent"
    failed = "failed"
    """Refused for good (invalid recipient): never retried."""
    dropped = "dropped"
    """EMAIL_SERVICE=disabled: logged and not sent."""


class EmailDelivery(IdMixin, Base):
    """One email the platform promised to send. A job that finds its key here as ``sent``
    does not send again."""

    __tablename__ = "email_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('sending', 'sent', 'failed', 'dropped')", name="status_known"),
        Index("ix_email_deliveries_updated_at", "updated_at"),
    )

    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    """Whose address ``recipient`` is: GDPR export and erasure find the row by it. Null only
    for rows written before the column existed that matched no account."""
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[str] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[dt.datetime | None]
