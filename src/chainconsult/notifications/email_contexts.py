"""What each notification email's templates read, one model per NotificationKind (the
marketplace's vocabulary: the template files carry the same names). The notification job
fills these from the database when it runs (chainconsult.notifications.emails), never from
job arguments, so the queue holds no names, addresses or texts."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chainconsult.notifications.schemas import NotificationKind

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=10)]


class EmailContext(BaseModel):
    # A context that does not fit fails its job with an error text kept in job_failures and
    # the logs: naming the field is enough, quoting someone's stored words is not wanted there.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ApplicationDecidedEmail(EmailContext):
    decision: Literal["approved", "rejected"]
    note: str | None = Field(None, max_length=2000)


class ProposalReceivedEmail(EmailContext):
    project_id: uuid.UUID
    project_title: Title
    expert_name: Name
    price_amount: Decimal
    price_currency: Currency
    estimated_days: int = Field(ge=1)


class ProposalAcceptedEmail(EmailContext):
    project_id: uuid.UUID
    project_title: Title
    client_name: Name


class ProposalDeclinedEmail(EmailContext):
    project_id: uuid.UUID
    project_title: Title
    reason: Literal["another_accepted", "project_cancelled"]


class ProjectCompletedEmail(EmailContext):
    project_id: uuid.UUID
    project_title: Title


class ReviewReceivedEmail(EmailContext):
    project_id: uuid.UUID
    project_title: Title
    rating: int = Field(ge=1, le=5)
    text: str = Field(max_length=5000)


class _ProjectOffer(EmailContext):
    project_id: uuid.UUID
    project_title: Title
    skills: list[str] = Field(max_length=50)
    chains: list[str] = Field(max_length=50)
    budget_min: Decimal
    budget_max: Decimal
    budget_currency: Currency


class ProjectMatchedEmail(_ProjectOffer):
    pass


class ProjectInvitationEmail(_ProjectOffer):
    client_name: Name


class MilestoneChangedEmail(EmailContext):
    project_id: uuid.UUID
    project_title: Title
    milestone_title: Title
    status: Literal["draft", "funded", "released", "disputed", "resolved", "refunded"]


EMAIL_CONTEXTS: dict[NotificationKind, type[EmailContext]] = {
    NotificationKind.application_decided: ApplicationDecidedEmail,
    NotificationKind.proposal_received: ProposalReceivedEmail,
    NotificationKind.proposal_accepted: ProposalAcceptedEmail,
    NotificationKind.proposal_declined: ProposalDeclinedEmail,
    NotificationKind.project_completed: ProjectCompletedEmail,
    NotificationKind.review_received: ReviewReceivedEmail,
    NotificationKind.project_matched: ProjectMatchedEmail,
    NotificationKind.project_invitation: ProjectInvitationEmail,
    NotificationKind.milestone_changed: MilestoneChangedEmail,
}
"""Every notification kind has exactly one email (tests/mail checks the templates too)."""
