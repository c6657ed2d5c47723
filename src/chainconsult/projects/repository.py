from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import Select, delete, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.accounts import Account
from chainconsult.models.experts import ExpertProfile
from chainconsult.models.projects import (
    Project,
    ProjectInvitation,
    ProjectStatus,
    Review,
    Visibility,
)
from chainconsult.projects.schemas import ProjectFilters

Position = tuple[dt.datetime, uuid.UUID]


class ProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_account(self, account_id: uuid.UUID) -> Account | None:
        """The quota check's lock: two concurrent submissions by one client queue here, so
        both cannot see the same count and slip past the limit together."""
        query = select(Account).where(Account.id == account_id).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def count_open(self, client_id: uuid.UUID) -> int:
        query = select(func.count()).where(
            Project.client_id == client_id, Project.status == ProjectStatus.open
        )
        return int((await self.session.execute(query)).scalar_one())

    async def add(self, project: Project) -> Project:
        self.session.add(project)
        await self.session.flush()
        return project

    async def get(self, project_id: uuid.UUID, *, lock: bool = False) -> Project | None:
        query = select(Project).where(Project.id == project_id)
        if lock:
            query = query.with_for_update()
        query = query.execution_options(populate_existing=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def invited(self, project_id: uuid.UUID) -> list[uuid.UUID]:
        query = (
            select(ProjectInvitation.expert_id)
            .where(ProjectInvitation.project_id == project_id)
            .order_by(ProjectInvitation.created_at, ProjectInvitation.expert_id)
        )
        return list((await self.session.execute(query)).scalars())

    async def invited_to(
        self, project_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """The invitation lists of several projects in one query (for a page of them)."""
        query = (
            select(ProjectInvitation.project_id, ProjectInvitation.expert_id)
            .where(ProjectInvitation.project_id.in_(list(project_ids)))
            .order_by(ProjectInvitation.created_at, ProjectInvitation.expert_id)
        )
        lists: dict[uuid.UUID, list[uuid.UUID]] = {project_id: [] for project_id in project_ids}
        for project_id, expert_id in await self.session.execute(query):
            lists[project_id].append(expert_id)
        return lists

    async def is_invited(self, project_id: uuid.UUID, expert_id: uuid.UUID) -> bool:
        query = select(ProjectInvitation.expert_id).where(
            ProjectInvitation.project_id == project_id, ProjectInvitation.expert_id == expert_id
        )
        return (await self.session.execute(query)).first() is not None

    async def replace_invitations(
        self, project_id: uuid.UUID, expert_ids: Sequence[uuid.UUID]
    ) -> list[uuid.UUID]:
        """Set the invitation list; returns the experts who were not invited before."""
        before = set(await self.invited(project_id))
        await self.session.execute(
            delete(ProjectInvitation).where(
                ProjectInvitation.project_id == project_id,
                ProjectInvitation.expert_id.not_in(list(expert_ids) or [uuid.UUID(int=0)]),
            )
        )
        new = [expert for expert in expert_ids if expert not in before]
        if new:
            await self.session.execute(
                insert(ProjectInvitation),
                [{"project_id": project_id, "expert_id": expert} for expert in new],
            )
        return new

    async def existing_experts(self, expert_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        query = select(ExpertProfile.id).where(ExpertProfile.id.in_(list(expert_ids)))
        return set((await self.session.execute(query)).scalars())

    async def matching_experts(self, project: Project) -> list[uuid.UUID]:
        """Approved experts sharing a skill and a chain with the project (GIN && lookups)."""
        query = select(ExpertProfile.id).where(
            ExpertProfile.skills.overlap(project.skills),
            ExpertProfile.chains.overlap(project.chains),
            ExpertProfile.id != project.client_id,
        )
        return list((await self.session.execute(query)).scalars())

    def _open_public(self, filters: ProjectFilters) -> Select[Project]:
        query = select(Project).where(
            Project.status == ProjectStatus.open, Project.visibility == Visibility.public
        )
        return self._narrowed(query, filters)

    async def open_public(
        self, filters: ProjectFilters, *, after: Position | None, limit: int, offset: int = 0
    ) -> list[Project]:
        query = self._open_public(filters)
        if after is not None:
            query = query.where(tuple_(Project.created_at, Project.id) < after)
        query = query.order_by(Project.created_at.desc(), Project.id.desc()).limit(limit)
        if offset:
            query = query.offset(offset)
        return list((await self.session.execute(query)).scalars())

    async def count_open_public(self, filters: ProjectFilters) -> int:
        query = select(func.count()).select_from(self._open_public(filters).subquery())
        return int((await self.session.execute(query)).scalar_one())

    async def owned_by(
        self, client_id: uuid.UUID, filters: ProjectFilters, *, after: Position | None, limit: int
    ) -> list[Project]:
        query = self._narrowed(select(Project).where(Project.client_id == client_id), filters)
        if after is not None:
            query = query.where(tuple_(Project.created_at, Project.id) < after)
        query = query.order_by(Project.created_at.desc(), Project.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def invitations_of(
        self, expert_id: uuid.UUID, filters: ProjectFilters, *, after: Position | None, limit: int
    ) -> list[Project]:
        query = select(Project).join(
            ProjectInvitation,
            (ProjectInvitation.project_id == Project.id)
            & (ProjectInvitation.expert_id == expert_id),
        )
        query = self._narrowed(query, filters)
        if after is not None:
            query = query.where(tuple_(Project.created_at, Project.id) < after)
        query = query.order_by(Project.created_at.desc(), Project.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    @staticmethod
    def _narrowed(query: Select[Project], filters: ProjectFilters) -> Select[Project]:
        if filters.skills:
            query = query.where(Project.skills.contains([s.value for s in filters.skills]))
        if filters.chains:
            query = query.where(Project.chains.contains([c.value for c in filters.chains]))
        return query

    async def review_of(self, project_id: uuid.UUID) -> Review | None:
        """The review of a project's expert, if its client wrote one (at most one)."""
        query = select(Review).where(Review.project_id == project_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_review(self, review: Review) -> Review:
        self.session.add(review)
        await self.session.flush()
        return review
