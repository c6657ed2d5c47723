from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chainconsult.experts.vocabulary import Amount, Chain, ChainList, Currency, Skill, SkillList
from chainconsult.infra.request_models import (
    FromIsoText,
    FromText,
    JsonInt,
    RequestModel,
    omit_instead_of_null,
)
from chainconsult.infra.text import MultiLine, SingleLine
from chainconsult.models.projects import ProjectStatus, Visibility

Title = Annotated[str, SingleLine(min_length=5, max_length=200)]
Description = Annotated[str, MultiLine(min_length=20, max_length=20_000)]
ReviewText = Annotated[str, MultiLine(min_length=1, max_length=5000)]


class Budget(RequestModel):
    min: Amount
    max: Amount
    currency: FromText[Currency]

    @model_validator(mode="after")
    def _ordered(self) -> Budget:
        if self.max < self.min:
            raise ValueError("budget max must not be below min")
        return self


InvitedExperts = Annotated[
    list[FromText[uuid.UUID]],
    Field(
        max_length=50,
        description="Expert ids (from the directory) who may see and propose on an "
        "invite_only project.",
    ),
]


class ProjectRequest(RequestModel):
    title: Title
    description: Description
    chains: ChainList
    skills: SkillList
    budget: Budget
    deadline: FromIsoText[dt.date] = Field(description="ISO date; must be after today.")
    visibility: FromText[Visibility] = Visibility.public
    invited_experts: InvitedExperts = Field(default_factory=list)


class ProjectUpdate(RequestModel):
    """Fields to change while the project is open; `status: "cancelled"` cancels it (also
    allowed while in progress)."""

    model_config = ConfigDict(json_schema_extra=omit_instead_of_null)

    title: Title | None = None
    description: Description | None = None
    chains: ChainList | None = None
    skills: SkillList | None = None
    budget: Budget | None = None
    deadline: FromIsoText[dt.date] | None = None
    visibility: FromText[Visibility] | None = None
    invited_experts: InvitedExperts | None = None
    status: Literal["cancelled"] | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ProjectUpdate:
        # Omit a field to keep it; null would mean "erase", which no field allows.
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"omit a field to leave it unchanged; null is not allowed: {nulls}")
        return self


class ProjectResponse(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    title: str
    description: str
    chains: list[str]
    skills: list[str]
    budget: Budget
    deadline: dt.date
    visibility: Visibility
    status: ProjectStatus
    invited_experts: list[uuid.UUID] | None = Field(
        None, description="Shown to the owner and admins only."
    )
    expert_id: uuid.UUID | None = Field(description="The expert whose proposal was accepted.")
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        if hasattr(value, "budget_min"):
            fields = {n: getattr(value, n) for n in cls.model_fields if hasattr(value, n)}
            fields.pop("invited_experts", None)
            return {
                **fields,
                "budget": {
                    "min": Decimal(value.budget_min),
                    "max": Decimal(value.budget_max),
                    "currency": value.budget_currency,
                },
            }
        return value


class ProjectView(StrEnum):
    open = "open"
    """Open public projects, newest first (the same for every caller)."""
    mine = "mine"
    """Projects you own, any status."""
    invited = "invited"
    """Invite-only projects you were invited to."""


class ProjectFilters(BaseModel):
    model_config = ConfigDict(frozen=True)

    skills: tuple[Skill, ...] = ()
    chains: tuple[Chain, ...] = ()


class ReviewRequest(RequestModel):
    rating: JsonInt = Field(ge=1, le=5)
    text: ReviewText


class ReviewResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    expert_id: uuid.UUID
    reviewer_id: uuid.UUID | None = Field(description="Null once the reviewer erased their data.")
    rating: int
    text: str
    created_at: dt.datetime
