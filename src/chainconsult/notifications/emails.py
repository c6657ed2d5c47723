"""What a notification's email says, read from the database when the email job runs.

The job carries the notification id only (procrastinate stores and logs job arguments), so
names, prices and review texts are looked up here, at send time, which also means the email
reflects the latest state: an edited project title, a recipient who has since been erased
(nothing is sent), a proposal withdrawn before its email went out (nothing is sent), a client
erased since (their name reads "Deleted user", their deleted project's title is gone)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.accounts import Account
from chainconsult.models.base import Base
from chainconsult.models.escrow import Milestone
from chainconsult.models.notifications import Notification
from chainconsult.models.projects import Project, ProjectStatus, Proposal, ProposalStatus, Review
from chainconsult.notifications.email_contexts import (
    ApplicationDecidedEmail,
    EmailContext,
    MilestoneChangedEmail,
    ProjectCompletedEmail,
    ProjectInvitationEmail,
    ProjectMatchedEmail,
    ProposalAcceptedEmail,
    ProposalDeclinedEmail,
    ProposalReceivedEmail,
    ReviewReceivedEmail,
)
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
    quoting: frozenset[uuid.UUID]
    """The active accounts whose words the email carries (a project's title, a name): the
    delivery is claimed only while they still are (chainconsult.mail.service)."""


@dataclass(slots=True)
class _Reading:
    """What composing one email reads, and whose words it quotes."""

    session: AsyncSession
    quoting: set[uuid.UUID] = field(default_factory=set)

    async def row(self, model: type[Row], payload: Payload, name: str) -> Row:
        found = await self.session.get(model, uuid.UUID(str(payload[name])))
        if found is None:
            raise NothingToSend(f"{name.removesuffix('_id')} gone")
        return found

    async def quote(self, account_id: uuid.UUID) -> Account:
        # Accounts are never deleted, only anonymised: the foreign key guarantees the row.
        account = await self.session.get(Account, account_id)
        assert account is not None
        if account.is_active:
            self.quoting.add(account.id)
        return account

    async def project(self, payload: Payload) -> Project:
        """The payload's project, its title quoted from its client."""
        project = await self.row(Project, payload, "project_id")
        await self.quote(project.client_id)
        return project

    async def open_project(self, payload: Payload) -> Project:
        project = await self.project(payload)
        if project.status != ProjectStatus.open:
            # An invitation to propose on a project that no longer takes proposals helps nobody.
            raise NothingToSend(f"project {project.status}")
        return project


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
    reading = _Reading(session)
    context = await _CONTEXT_OF[kind](reading, notification.payload)
    return NotificationEmail(
        kind=kind,
        account_id=recipient.id,
        to=recipient.email,
        display_name=recipient.display_name,
        context=context,
        quoting=frozenset(reading.quoting - {recipient.id}),
    )


async def _application_decided(reading: _Reading, payload: Payload) -> EmailContext:
    return ApplicationDecidedEmail(decision=payload["decision"], note=payload["note"] or None)


async def _proposal_received(reading: _Reading, payload: Payload) -> EmailContext:
    project = await reading.project(payload)
    proposal = await reading.row(Proposal, payload, "proposal_id")
    if proposal.status == ProposalStatus.withdrawn:
        raise NothingToSend("proposal withdrawn")
    expert = await reading.quote(proposal.expert_id)
    return ProposalReceivedEmail(
        project_id=project.id,
        project_title=project.title,
        expert_name=expert.display_name,
        price_amount=proposal.price_amount,
        price_currency=proposal.price_currency,
        estimated_days=proposal.estimated_days,
    )


async def _proposal_accepted(reading: _Reading, payload: Payload) -> EmailContext:
    project = await reading.project(payload)
    client = await reading.quote(project.client_id)
    return ProposalAcceptedEmail(
        project_id=project.id, project_title=project.title, client_name=client.display_name
    )


async def _proposal_declined(reading: _Reading, payload: Payload) -> EmailContext:
    # From the payload alone: a project deleted by its client's erasure must still tell its
    # bidders that their proposal is closed (the erasure put a placeholder title there).
    project = await reading.session.get(Project, uuid.UUID(str(payload["project_id"])))
    if project is not None:
        await reading.quote(project.client_id)
    return ProposalDeclinedEmail(
        project_id=payload["project_id"],
        project_title=payload["project_title"],
        reason=payload["reason"],
    )


async def _project_completed(reading: _Reading, payload: Payload) -> EmailContext:
    project = await reading.project(payload)
    return ProjectCompletedEmail(project_id=project.id, project_title=project.title)


async def _review_received(reading: _Reading, payload: Payload) -> EmailContext:
    project = await reading.project(payload)
    review = await reading.row(Review, payload, "review_id")
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


async def _project_matched(reading: _Reading, payload: Payload) -> EmailContext:
    return ProjectMatchedEmail(**_offer(await reading.open_project(payload)))


async def _project_invitation(reading: _Reading, payload: Payload) -> EmailContext:
    project = await reading.open_project(payload)
    client = await reading.quote(project.client_id)
    return ProjectInvitationEmail(**_offer(project), client_name=client.display_name)


async def _milestone_changed(reading: _Reading, payload: Payload) -> EmailContext:
    project = await reading.project(payload)
    await reading.row(Milestone, payload, "milestone_id")
    return MilestoneChangedEmail(
        project_id=project.id,
        project_title=project.title,
        milestone_title=payload["milestone_title"],
        status=payload["status"],
    )


_CONTEXT_OF: dict[NotificationKind, Callable[[_Reading, Payload], Awaitable[EmailContext]]] = {
    NotificationKind.application_decided: _application_decided,
    NotificationKind.proposal_received: _proposal_received,
    NotificationKind.proposal_accepted: _proposal_accepted,
    NotificationKind.proposal_declined: _proposal_declined,
    NotificationKind.project_completed: _project_completed,
    NotificationKind.review_received: _review_received,
    NotificationKind.project_matched: _project_matched,
    NotificationKind.project_invitation: _project_invitation,
    NotificationKind.milestone_changed: _milestone_changed,
}
