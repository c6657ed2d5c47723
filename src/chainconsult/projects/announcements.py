"""Who hears about a project: matching experts when it is public, invitees when it is
invite-only, and the experts whose pending proposals it declines (cancelled, or another
accepted). One home for these notifications, so the project and proposal services send the
same payloads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.projects import Project, Visibility
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from chainconsult.projects.repository import ProjectRepository


class Announcements:
    def __init__(self, session: AsyncSession) -> None:
        self.notifications = NotificationService(session)
        self.repository = ProjectRepository(session)

    async def posted(self, project: Project, new_invitees: list[uuid.UUID]) -> None:
        """A new project: to the matching experts when public, else to its invitees."""
        if project.visibility == Visibility.public:
            await self.to_matching_experts(project)
        elif new_invitees:
            await self.to_invitees(project, new_invitees)

    async def to_matching_experts(self, project: Project) -> None:
        await self.notifications.notify(
            recipients=await self.repository.matching_experts(project),
            kind=NotificationKind.project_matched,
            payload={
                "project_id": project.id,
                "project_title": project.title,
                "skills": project.skills,
                "chains": project.chains,
            },
        )

    async def to_invitees(self, project: Project, invitees: list[uuid.UUID]) -> None:
        await self.notifications.notify(
            recipients=invitees,
            kind=NotificationKind.project_invitation,
            payload={"project_id": project.id, "project_title": project.title},
        )

    async def declined(
        self,
        project: Project,
        proposals: Iterable[tuple[uuid.UUID, uuid.UUID]],
        *,
        reason: str,
    ) -> None:
        """Tell each expert of ``proposals`` (proposal id, expert id) that theirs was declined
        and why (``project_cancelled`` or ``another_accepted``)."""
        for proposal_id, expert_id in proposals:
            await self.notifications.notify(
                recipients=[expert_id],
                kind=NotificationKind.proposal_declined,
                payload={
                    "project_id": project.id,
                    "project_title": project.title,
                    "proposal_id": proposal_id,
                    "reason": reason,
                },
            )
