"""Client project requests, the experts invited to them, proposals and reviews."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin, TimestampMixin


class ProjectStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


class Visibility(StrEnum):
    public = "public"
    invite_only = "invite_only"


class ProposalStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    withdrawn = "withdrawn"


class Project(IdMixin, TimestampMixin, Base):
    __tablename__ = "projects"
    __table_args__ = (
        Index("ix_projects_client_created", "client_id", "created_at", "id"),
        # The open-project list: newest first, public only.
        Index(
            "ix_projects_open_public",
            "created_at",
            "id",
            postgresql_where=text("status = 'open' AND visibility = 'public'"),
        ),
        Index("ix_projects_skills", "skills", postgresql_using="gin"),
        Index("ix_projects_chains", "chains", postgresql_using="gin"),
        CheckConstraint(
            "status IN ('open', 'in_progress', 'completed', 'cancelled')", name="status_known"
        ),
        CheckConstraint("visibility IN ('public', 'invite_only')", name="visibility_known"),
        CheckConstraint("budget_min > 0 AND budget_max >= budget_min", name="budget_range"),
    )

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    chains: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    budget_min: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    budget_max: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    budget_currency: Mapped[str] = mapped_column(String(8))
    deadline: Mapped[dt.date]
    visibility: Mapped[str] = mapped_column(String(20), default=Visibility.public)
    status: Mapped[str] = mapped_column(String(20), default=ProjectStatus.open)
    expert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    """The expert whose proposal was accepted."""
    completed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]


class ProjectInvitation(Base):
    __tablename__ = "project_invitations"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))


class Proposal(IdMixin, TimestampMixin, Base):
    __tablename__ = "proposals"
    __table_args__ = (
        # One active (pending or accepted) proposal per expert per project; a withdrawn or
        # declined one does not block a new one.
        Index(
            "uq_proposals_one_active",
            "project_id",
            "expert_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'accepted')"),
        ),
        # At most one accepted proposal per project: the backstop of the accept's row lock.
        Index(
            "uq_proposals_one_accepted",
            "project_id",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
        ),
        Index("ix_proposals_project_created", "project_id", "created_at", "id"),
        Index("ix_proposals_expert_created", "expert_id", "created_at", "id"),
        CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'withdrawn')", name="status_known"
        ),
        CheckConstraint("price_amount > 0", name="price_positive"),
        CheckConstraint("estimated_days BETWEEN 1 AND 3650", name="days_range"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    cover_letter: Mapped[str] = mapped_column(Text)
    price_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    price_currency: Mapped[str] = mapped_column(String(8))
    estimated_days: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=ProposalStatus.pending)
    decided_at: Mapped[dt.datetime | None]


class Review(IdMixin, Base):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_expert_created", "expert_id", "created_at", "id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), unique=True
    )
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    """The client who wrote it; NULL once that client erased their account."""
    rating: Mapped[int] = mapped_column(SmallInteger)
    text: Mapped[str] = mapped_column(Text)
    # `text` above shadows sqlalchemy.text inside this class body, hence func.now().
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
