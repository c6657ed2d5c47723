"""The board of open public projects, and the newest-first order every project list uses."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.pagination import Page, by_creation
from chainconsult.models.projects import Project
from chainconsult.projects.repository import ProjectRepository
from chainconsult.projects.schemas import ProjectFilters, ProjectResponse, ProjectView


class OpenProjects:
    """Open public projects, newest first: a pure read (identical for every caller), so a
    cache can wrap ``search``."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = ProjectRepository(session)

    async def search(
        self, filters: ProjectFilters, cursor: str | None, limit: int
    ) -> Page[ProjectResponse]:
        after = NEWEST_FIRST[ProjectView.open].after(cursor)
        rows = await self.repository.open_public(filters, after=after, limit=limit + 1)
        return project_page(rows, ProjectView.open, limit)

    async def numbered_page(
        self, filters: ProjectFilters, offset: int, limit: int
    ) -> tuple[Page[ProjectResponse], int]:
        """A page by position, with the total: API v1's numbered pages."""
        rows = await self.repository.open_public(filters, after=None, limit=limit, offset=offset)
        page = Page[ProjectResponse](data=[ProjectResponse.model_validate(row) for row in rows])
        return page, await self.repository.count_open_public(filters)


NEWEST_FIRST = {view: by_creation(f"projects:{view}") for view in ProjectView}
"""Newest first, one cursor kind per view."""


def project_page(rows: list[Project], view: ProjectView, limit: int) -> Page[ProjectResponse]:
    return NEWEST_FIRST[view].page(
        Page[ProjectResponse], rows, limit, ProjectResponse.model_validate
    )
