from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chainconsult.experts.vocabulary import Chain, Currency, Money, Skill


class ExpertSort(StrEnum):
    rating = "rating"
    """Highest average rating first."""
    rate = "rate"
    """Lowest hourly rate first."""
    newest = "newest"
    """Most recently approved first."""
    relevance = "relevance"
    """Best match for ``q`` first: the text match (name, headline and skills weigh more than
    the bio) combined with the rating. The default when ``q`` is given; rating without it."""


class DirectoryFilters(BaseModel):
    """What the directory can be narrowed by; every field is optional."""

    model_config = ConfigDict(frozen=True)

    skills: tuple[Skill, ...] = ()
    chains: tuple[Chain, ...] = ()
    q: str | None = None
    min_rating: Decimal | None = None
    max_rate: Decimal | None = None
    currency: Currency | None = None
    sort: ExpertSort = ExpertSort.rating

    @model_validator(mode="before")
    @classmethod
    def _default_sort(cls, value: Any) -> Any:
        """Relevance when there is a query and no sort, rating otherwise: relevance ranks
        matches and has nothing to rank without a query."""
        if isinstance(value, dict):
            sort, query = value.get("sort"), value.get("q")
            if sort is None or (sort == ExpertSort.relevance and not query):
                return {**value, "sort": ExpertSort.relevance if query else ExpertSort.rating}
        return value


class RatingSummary(BaseModel):
    average: Decimal = Field(description="Mean of all reviews, two decimals; 0 with none.")
    count: int


def _money(amount: Any, currency: Any) -> dict[str, Any]:
    return {"amount": Decimal(amount), "currency": currency}


class ExpertBasics(BaseModel):
    """What a directory entry and a profile both show."""

    id: uuid.UUID
    display_name: str
    headline: str
    skills: list[str]
    chains: list[str]
    hourly_rate: Money
    years_experience: int
    rating: RatingSummary
    approved_at: dt.datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        if hasattr(value, "hourly_rate_amount"):
            fields = {n: getattr(value, n) for n in cls.model_fields if hasattr(value, n)}
            return {
                **fields,
                "hourly_rate": _money(value.hourly_rate_amount, value.hourly_rate_currency),
                "rating": {"average": value.rating_avg, "count": value.rating_count},
            }
        return value


class ExpertSummary(ExpertBasics):
    """One directory entry. ``id`` is also the expert's account id in proposals."""

    highlight: str | None = Field(
        None,
        description="With `q`: where the profile matches, as HTML: escaped text in which "
        "the matched words are wrapped in `<mark>`, fragments joined by ` … `. Null "
        "without `q`.",
    )


class ReviewSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rating: int
    text: str
    created_at: dt.datetime


class ExpertDetail(ExpertBasics):
    bio: str
    portfolio_links: list[str]
    rating_distribution: dict[str, int] = Field(
        description='Number of reviews per star, e.g. {"5": 12, "4": 3, ...}.'
    )
    recent_reviews: list[ReviewSummary] = Field(description="The ten newest reviews.")
    payout_wallet_verified: bool = Field(
        False,
        description="Whether the expert proved their payout wallet by Sign-In with Ethereum.",
    )
