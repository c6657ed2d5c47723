"""Request and response models: the same field names and shapes as chainconsult's v2 API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Currency = Literal["USD", "EUR", "GBP", "CHF", "USDC", "USDT", "DAI"]


class Money(BaseModel):
    amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    currency: Currency


class Rating(BaseModel):
    average: Decimal
    count: int


class ExpertSummary(BaseModel):
    id: uuid.UUID
    display_name: str
    headline: str
    skills: list[str]
    chains: list[str]
    hourly_rate: Money
    years_experience: int
    rating: Rating
    approved_at: dt.datetime


class ExpertPage(BaseModel):
    data: list[ExpertSummary]
    next_cursor: str | None = None


class Review(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rating: int
    text: str
    created_at: dt.datetime


class ExpertDetail(ExpertSummary):
    bio: str
    portfolio_links: list[str]
    rating_distribution: dict[str, int]
    recent_reviews: list[Review]
    payout_wallet_verified: bool


class LoginRequest(BaseModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: str
    plan: str


class ProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cover_letter: str = Field(min_length=20, max_length=10_000)
    price: Money
    estimated_days: int = Field(ge=1, le=3650)


class ProposalOut(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    expert_id: uuid.UUID
    cover_letter: str
    price: Money
    estimated_days: int
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    decided_at: dt.datetime | None = None
