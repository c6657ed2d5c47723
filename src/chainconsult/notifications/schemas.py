from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NotificationKind(StrEnum):
    """What a notification announces. Payloads carry ids, states and project titles only,
    never a person's name or contact, so erasing a user leaves nothing of them in others'
    notifications."""

    application_decided = "application_decided"
    """To the applicant: application_id, decision (approved|rejected), note."""
    proposal_received = "proposal_received"
    """To the project owner: project_id, project_title, proposal_id."""
    proposal_accepted = "proposal_accepted"
    """To the expert: project_id, project_title, proposal_id."""
    proposal_declined = "proposal_declined"
    """To the expert: project_id, project_title, proposal_id, reason
    (another_accepted|project_cancelled)."""
    project_completed = "project_completed"
    """To the hired expert: project_id, project_title."""
    review_received = "review_received"
    """To the expert: project_id, review_id, rating."""
    project_matched = "project_matched"
    """To approved experts whose skills and chains fit a new public project: project_id,
    project_title, skills, chains."""
    project_invitation = "project_invitation"
    """To each expert invited to an invite-only project: project_id, project_title."""
    milestone_changed = "milestone_changed"
    """To the client and the expert when a milestone's escrow state changes on chain:
    project_id, project_title, milestone_id, milestone_title, status."""


PAYLOAD_FIELDS: dict[NotificationKind, frozenset[str]] = {
    NotificationKind.application_decided: frozenset({"application_id", "decision", "note"}),
    NotificationKind.proposal_received: frozenset({"project_id", "project_title", "proposal_id"}),
    NotificationKind.proposal_accepted: frozenset({"project_id", "project_title", "proposal_id"}),
    NotificationKind.proposal_declined: frozenset(
        {"project_id", "project_title", "proposal_id", "reason"}
    ),
    NotificationKind.project_completed: frozenset({"project_id", "project_title"}),
    NotificationKind.review_received: frozenset({"project_id", "review_id", "rating"}),
    NotificationKind.project_matched: frozenset(
        {"project_id", "project_title", "skills", "chains"}
    ),
    NotificationKind.project_invitation: frozenset({"project_id", "project_title"}),
    NotificationKind.milestone_changed: frozenset(
        {"project_id", "project_title", "milestone_id", "milestone_title", "status"}
    ),
}


class NotificationResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: NotificationKind
    payload: dict[str, Any] = Field(description="Fields depend on `kind` (ids, titles, states).")
    created_at: dt.datetime
    read_at: dt.datetime | None = Field(description="When it was marked read; null if unread.")
