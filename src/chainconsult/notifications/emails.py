"""What a notification's email says, read from the database when the email job runs.

The job carries the notification id only (procrastinate stores and logs job arguments), so
names, prices and review texts are looked up here, at send time, which also means the email
reflects the latest state: an edited project title, a recipient who has since been erased
(nothing is sent), a proposal withdrawn before its email went out (nothing is sent)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.mail.schemas import (
    ApplicationDecidedEmail,
    EmailContext,
    ProjectCompletedEmail,
    ProjectInvitationEmail,
    ProjectMatchedEmail,
    ProposalAcceptedEmail,
    ProposalDeclinedEmail,
    ProposalReceivedEmail,
    ReviewReceivedEmail,
)
from chainconsult.models.accounts import Account
from chainconsult.models.base import Base
from chainconsult.models.notifications import Notification
from chainconsult.models.projects import Project, ProjectStatus, Proposal, ProposalStatus, Review
from chainconsult.notifications.schemas import NotificationKind

Payload = dict[str, Any]
Row = TypeVar("Row", bound=Base)


class NothingToSend(Exception):
    """The email is no longer due; the message says why (it becomes the job's result)."""


@dataclass(frozen=True, slots=True)
class NotificationEmail:
    kind: NotificationKind
    account_id: uuid.UUID
    to: str
    display_name: str
    context: EmailContext


async def compose(session: AsyncSession, notification_id: uuid.UUID) -> NotificationEmail:
    """The email for one notification; raises NothingToSend when it should not go out."""
    notification = await session.get(Notification, notification_id)
    if notification is None:
        # Read and purged, or its recipient erased.
        raise NothingToSend("notification gone")
    recipient = await session.get(Account, notification.recipient_id)
    if recipient is None:
        raise NothingToSend("recipient gone")
    if not recipient.is_active:
        raise NothingToSend("recipient inactive")
    kind = NotificationKind(notification.kind)
    context = await _CONTEXT_OF[kind](session, notification.payload)
    return NotificationEmail(
        kind=kind,
        account_id=recipient.id,
        to=recipient.email,
        display_name=recipient.display_name,
        context=context,
    )


async def _row(session: AsyncSession, model: type[Row], payload: Payload, field: str) -> Row:
    found = await session.get(model, uuid.UUID(str(payload[field])))
    if found is None:
        raise NothingToSend(f"{field.removesuffix('_id')} gone")
    return found


async def _name_of(session: AsyncSession, account_id: uuid.UUID) -> str:
    # Accounts are never deleted, only anonymised: the foreign key guarantees the row.
    account = await session.get(Account, account_id)
    assert account is not None
    return account.display_name


async def _open_project(session: AsyncSession, payload: Payload) -> Project:
    project = await _row(session, Project, payload, "project_id")
    if project.status != ProjectStatus.open:
        # An invitation to propose on a project that no longer takes proposals helps nobody.
        raise NothingToSend(f"project {project.status}")
    return project


async def _application_decided(session: AsyncSession, payload: Payload) -> EmailContext:
    return ApplicationDecidedEmail(decision=payload["decision"], note=payload["note"] or None)


async def _proposal_received(session: AsyncSession, payload: Payload) -> EmailContext:
    project = await _row(session, Project, payload, "project_id")
    proposal = await _row(session, Proposal, payload, "proposal_id")
    if proposal.status == ProposalStatus.withdrawn:
        raise NothingToSend("proposal withdrawn")
    return ProposalReceivedEmail(
        project_id=project.id,
        project_title=project.title,
        expert_name=await _name_of(session, proposal.expert_id),
        price_amount=proposal.price_amount,
        price_currency=proposal.price_currency,
        estimated_days=proposal.estimated_days,
    )


async def _proposal_accepted(session: AsyncSession, payload: Payload) -> EmailContext:
    project = await _row(session, Project, payload, "project_id")
    return ProposalAcceptedEmail(
        project_id=project.id,
        project_title=project.title,
        client_name=await _name_of(session, project.client_id),
    )


async def _proposal_declined(session: AsyncSession, payload: Payload) -> EmailContext:
    # From the payload alone: a project cancelled by its client's erasure is deleted, and
    # its bidders must still hear that their proposal is closed.
    return ProposalDeclinedEmail(
        project_id=payload["project_id"],
        project_title=payload["project_title"],
        reason=payload["reason"],
    )


async def _project_completed(session: AsyncSession, payload: Payload) -> EmailContext:
    project = await _row(session, Project, payload, "project_id")
    return ProjectCompletedEmail(project_id=project.id, project_title=project.title)


async def _review_received(session: AsyncSession, payload: Payload) -> EmailContext:
    project = await _row(session, Project, payload, "project_id")
    review = await _row(session, Review, payload, "review_id")
    return ReviewReceivedEmail(
        project_id=project.id, project_title=project.title, rating=review.rating, text=review.text
    )


def _offer(project: Project) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "project_title": project.title,
        "skills": project.skills,
        "chains": project.chains,
        "budget_min": project.budget_min,
        "budget_max": project.budget_max,
        "budget_currency": project.budget_currency,
    }


async def _project_matched(session: AsyncSession, payload: Payload) -> EmailContext:
    return ProjectMatchedEmail(**_offer(await _open_project(session, payload)))


async def _project_invitation(session: AsyncSession, payload: Payload) -> EmailContext:
    project = await _open_project(session, payload)
    return ProjectInvitationEmail(
        **_offer(project), client_name=await _name_of(session, project.client_id)
    )


_CONTEXT_OF: dict[NotificationKind, Callable[[AsyncSession, Payload], Awaitable[EmailContext]]] = {
    NotificationKind.application_decided: _application_decided,
    NotificationKind.proposal_received: _proposal_received,
    NotificationKind.proposal_accepted: _proposal_accepted,
    NotificationKind.proposal_declined: _proposal_declined,
    NotificationKind.project_completed: _project_completed,
    NotificationKind.review_received: _review_received,
    NotificationKind.project_matched: _project_matched,
    NotificationKind.project_invitation: _project_invitation,
}
