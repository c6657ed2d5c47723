"""Accounts, their plan and role, and their login sessions."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin, TimestampMixin


class Role(StrEnum):
    client = "client"
    expert_candidate = "expert_candidate"
    """Registered as an expert; becomes ``expert`` when an admin approves the application."""
    expert = "expert"
    admin = "admin"


class Plan(StrEnum):
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


class Account(IdMixin, TimestampMixin, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        # Case-insensitive uniqueness; the stored address keeps the case the user typed.
        Index("uq_accounts_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint(
            "role IN ('client', 'expert_candidate', 'expert', 'admin')", name="role_known"
        ),
        CheckConstraint("plan IN ('free', 'pro', 'enterprise')", name="plan_known"),
    )

    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), default=Role.client)
    plan: Mapped[str] = mapped_column(String(20), default=Plan.free)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[dt.datetime | None]
    email_verified_at: Mapped[dt.datetime | None]
    """When a link mailed to the current address was opened; None until then."""

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class AccountSession(IdMixin, Base):
    """A login: the bearer token and the session cookie carry the same secret, stored here
    only as its SHA-256 so a database leak yields no usable token."""

    __tablename__ = "account_sessions"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    last_seen_at: Mapped[dt.datetime | None]
    """Roughly when the login was last used (refreshed at most once a minute)."""
