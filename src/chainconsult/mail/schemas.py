"""The kinds of notification email and the payload each one needs. Payloads are small and
explicit (titles, names, ids) so a job never has to guess what a template will read."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

NotificationKind = Literal[
    "application_decided",
    "new_proposal",
    "proposal_accepted",
    "proposal_declined",
    "project_completed",
    "review_received",
    "matching_project",
]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApplicationDecided(_Payload):
    decision: Literal["approved", "rejected"]
    note: str | None = Field(None, max_length=2000)


class NewProposal(_Payload):
    project_id: uuid.UUID
    project_title: Title
    expert_name: Name
    price_amount: Decimal
    price_currency: Annotated[str, StringConstraints(min_length=3, max_length=10)]
    estimated_days: int | None = Field(None, ge=1)


class ProposalAccepted(_Payload):
    project_id: uuid.UUID
    project_title: Title
    client_name: Name


class ProposalDeclined(_Payload):
    project_id: uuid.UUID
    project_title: Title


class ProjectCompleted(_Payload):
    project_id: uuid.UUID
    project_title: Title


class ReviewReceived(_Payload):
    project_id: uuid.UUID
    project_title: Title
    rating: int = Field(ge=1, le=5)
    text: str | None = Field(None, max_length=5000)


class MatchingProject(_Payload):
    project_id: uuid.UUID
    project_title: Title
    skills: list[str] = Field(default_factory=list, max_length=50)
    chains: list[str] = Field(default_factory=list, max_length=50)


PAYLOADS: dict[str, type[_Payload]] = {
    "application_decided": ApplicationDecided,
    "new_proposal": NewProposal,
    "proposal_accepted": ProposalAccepted,
    "proposal_declined": ProposalDeclined,
    "project_completed": ProjectCompleted,
    "review_received": ReviewReceived,
    "matching_project": MatchingProject,
}

_KIND = TypeAdapter(NotificationKind)


def validate_payload(kind: str, payload: dict[str, object]) -> dict[str, object]:
    """The payload as JSON values, checked against its kind; raises ValueError."""
    _KIND.validate_python(kind)
    return PAYLOADS[kind].model_validate(payload).model_dump(mode="json")
