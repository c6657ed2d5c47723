"""Single-use tokens mailed to an address: password reset and email verification."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin


class TokenPurpose(StrEnum):
    password_reset = "password_reset"  # noqa: S105 - a purpose, not a secret
    email_verification = "email_verification"


class AccountToken(IdMixin, Base):
    """One token mailed to ``email``. Only the SHA-256 of the token is kept; the token itself
    is derived from the row id and SECRET_KEY when the email is written (accounts/one_time.py),
    so it appears in no table and no job argument. A reset requested for an address without
    an account still gets a row (``account_id`` None): both cases do the same work."""

    __tablename__ = "account_tokens"
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('password_reset', 'email_verification')", name="purpose_known"
        ),
    )

    purpose: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(String(320))
    """The address the token was mailed to; verification proves this one (None for an
    unknown address's reset, which mails nothing)."""
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    used_at: Mapped[dt.datetime | None]
