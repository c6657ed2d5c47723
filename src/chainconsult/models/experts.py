"""Expert applications (every revision kept) and the public expert profiles they create."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from chainconsult.models.base import Base, IdMixin, TimestampMixin


class ApplicationStatus(StrEnum):
    submitted = "submitted"
    under_review = "under_review"
    approved = "approved"
    rejected = "rejected"


class ExpertOffer:
    """What an expert offers, as applied for and, once approved, as the directory shows it:
    the columns an application and a profile share."""

    headline: Mapped[str] = mapped_column(String(160))
    bio: Mapped[str] = mapped_column(Text)
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    chains: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    hourly_rate_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    hourly_rate_currency: Mapped[str] = mapped_column(String(8))
    years_experience: Mapped[int]
    portfolio_links: Mapped[list[str]] = mapped_column(ARRAY(String(2048)))
    wallet_address: Mapped[str | None] = mapped_column(String(128))
    wallet_chain: Mapped[str | None] = mapped_column(String(40))


class ExpertApplication(ExpertOffer, IdMixin, TimestampMixin, Base):
    """One revision of an account's application; a resubmission after a rejection is a new
    row with the next ``revision``, so the vetting history stays intact."""

    __tablename__ = "expert_applications"
    __table_args__ = (
        UniqueConstraint("account_id", "revision", name="uq_expert_applications_revision"),
        # At most one application waiting for a decision per account.
        Index(
            "uq_expert_applications_one_pending",
            "account_id",
            unique=True,
            postgresql_where=text("status IN ('submitted', 'under_review')"),
        ),
        Index("ix_expert_applications_status_created", "status", "created_at", "id"),
        # The vetting queue without a status filter, oldest first.
        Index("ix_expert_applications_created", "created_at", "id"),
        CheckConstraint(
            "status IN ('submitted', 'under_review', 'approved', 'rejected')",
            name="status_known",
        ),
        CheckConstraint("hourly_rate_amount > 0", name="rate_positive"),
        CheckConstraint("years_experience BETWEEN 0 AND 70", name="years_range"),
    )

    # Indexed by uq_expert_applications_revision, whose first column it is.
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(20), default=ApplicationStatus.submitted)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None]


class ExpertProfile(ExpertOffer, TimestampMixin, Base):
    """The public face of an approved expert. Its id is the expert's account id (a 1:1
    extension of the account), so a proposal's ``expert_id`` is also a directory id."""

    __tablename__ = "expert_profiles"
    __table_args__ = (
        Index("ix_expert_profiles_search", "search", postgresql_using="gin"),
        Index("ix_expert_profiles_skills", "skills", postgresql_using="gin"),
        Index("ix_expert_profiles_chains", "chains", postgresql_using="gin"),
        # One index per directory sort, each ending in the id the cursor carries.
        Index("ix_expert_profiles_rating_sort", "rating_avg", "id"),
        Index("ix_expert_profiles_rate_sort", "hourly_rate_amount", "id"),
        Index("ix_expert_profiles_newest_sort", "approved_at", "id"),
        CheckConstraint("rating_count >= 0 AND rating_sum >= 0", name="rating_nonnegative"),
        # The aggregates agree with each other whatever path wrote them.
        CheckConstraint(
            "(rating_count = 0 AND rating_sum = 0 AND rating_avg = 0) OR "
            "(rating_count > 0 AND rating_sum BETWEEN rating_count AND 5 * rating_count "
            "AND rating_avg = round(rating_sum::numeric / rating_count, 2))",
            name="rating_consistent",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str] = mapped_column(String(100))
    approved_at: Mapped[dt.datetime]
    rating_avg: Mapped[Decimal] = mapped_column(Numeric(3, 2), default=Decimal("0"))
    rating_count: Mapped[int] = mapped_column(default=0)
    rating_sum: Mapped[int] = mapped_column(default=0)
    # One weight class per field (name A, headline B, skills C, bio D): the ranking weighs
    # them in experts/repository.py. expert_skills_text is migration search1's.
    search: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english', coalesce(display_name, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(headline, '')), 'B') || "
            "setweight(to_tsvector('english', coalesce(expert_skills_text(skills), '')), 'C') || "
            "setweight(to_tsvector('english', coalesce(bio, '')), 'D')",
            persisted=True,
        ),
        deferred=True,
    )
    # The words a misspelt query term is matched against (pg_trgm index
    # ix_expert_profiles_search_words, created by the migration where pg_trgm exists).
    search_words: Mapped[str] = mapped_column(
        Text,
        Computed(
            "coalesce(display_name, '') || ' ' || coalesce(headline, '') || ' ' || "
            "coalesce(expert_skills_text(skills), '')",
            persisted=True,
        ),
        deferred=True,
    )
