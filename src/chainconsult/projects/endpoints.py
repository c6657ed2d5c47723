from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from chainconsult.accounts.auth import CurrentAccount
from chainconsult.accounts.verification import UNVERIFIED_RESPONSE
from chainconsult.audit.trail import Origin
from chainconsult.experts.vocabulary import Chain, Skill
from chainconsult.infra.cache import AppCache, cached_json
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.db.transaction import unit_of_work
from chainconsult.infra.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
)
from chainconsult.projects.board import OpenProjects
from chainconsult.projects.schemas import (
    ProjectFilters,
    ProjectRequest,
    ProjectResponse,
    ProjectUpdate,
    ProjectView,
    ReviewRequest,
    ReviewResponse,
)
from chainconsult.projects.service import (
    OPEN_PROJECTS_PAGE,
    OPEN_PROJECTS_TAG,
    ProjectService,
)

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectResponse,
    responses=UNVERIFIED_RESPONSE,
)
async def submit_project(
    body: ProjectRequest, principal: CurrentAccount, session: DbSession
) -> ProjectResponse:
    """Submit a project request. Open projects per plan: free 2, pro 20, enterprise
    unlimited (403 `quota-exceeded` beyond). A public project notifies every approved expert
    sharing a skill and a chain with it; an invite-only one notifies only the invited."""
    # The account row lock keeps concurrent submissions within the quota; the unit of work
    # re-runs the submission if it loses a deadlock or its connection.
    project = await unit_of_work(
        session, lambda s: ProjectService(s).submit(principal=principal, body=body)
    )
    return await ProjectService(session).response(project, principal)


@router.get(
    "",
    response_model=Page[ProjectResponse],
    responses={304: {"description": "Not modified (`view=open`, matching `If-None-Match`)."}},
)
async def list_projects(
    request: Request,
    principal: CurrentAccount,
    session: DbSession,
    cache: AppCache,
    view: Annotated[
        ProjectView,
        Query(description="`open`: open public projects; `mine`: yours; `invited`: invitations."),
    ] = ProjectView.open,
    skill: Annotated[list[Skill], Query(max_length=10)] = [],  # noqa: B006
    chain: Annotated[list[Chain], Query(max_length=10)] = [],  # noqa: B006
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[ProjectResponse] | Response:
    """Projects, newest first, with cursor pagination. `view=open` is the same for every
    caller and served from the cache (a new, edited, cancelled or taken project shows on the
    next request), with an `ETag` for `If-None-Match`."""
    filters = ProjectFilters(skills=tuple(skill), chains=tuple(chain))
    if view is ProjectView.open:
        board = OpenProjects(session)
        return await cached_json(
            request,
            OPEN_PROJECTS_PAGE,
            cache=cache,
            arguments={"filters": filters, "cursor": cursor, "limit": limit},
            tags=[OPEN_PROJECTS_TAG],
            load=lambda: board.search(filters, cursor, limit),
            # Behind a login: browsers may keep it, shared caches may not.
            cache_control="private, no-cache",
        )
    return await ProjectService(session).listing(principal, view, filters, cursor, limit)


@router.get("/{project_id}", response_model=ProjectResponse)
async def get_project(
    project_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> ProjectResponse:
    """One project; an invite-only project you are not part of answers 404."""
    service = ProjectService(session)
    return await service.response(await service.visible(project_id, principal), principal)


@router.patch("/{project_id}", response_model=ProjectResponse)
async def update_project(
    project_id: uuid.UUID,
    body: ProjectUpdate,
    principal: CurrentAccount,
    session: DbSession,
    origin: Origin,
) -> ProjectResponse:
    """Edit your open project, or cancel it with `{"status": "cancelled"}` (open or in
    progress; pending proposals are declined). Admins may act on any project."""
    project = await unit_of_work(
        session,
        lambda s: ProjectService(s).update(
            project_id=project_id, principal=principal, body=body, origin=origin
        ),
    )
    return await ProjectService(session).response(project, principal)


@router.post("/{project_id}/complete", response_model=ProjectResponse)
async def complete_project(
    project_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> ProjectResponse:
    """Mark the delivered work complete (project in progress; owner or admin)."""
    project = await unit_of_work(
        session, lambda s: ProjectService(s).complete(project_id=project_id, principal=principal)
    )
    return await ProjectService(session).response(project, principal)


@router.post(
    "/{project_id}/review", status_code=status.HTTP_201_CREATED, response_model=ReviewResponse
)
async def review_expert(
    project_id: uuid.UUID, body: ReviewRequest, principal: CurrentAccount, session: DbSession
) -> ReviewResponse:
    """Rate the expert of your completed project, once (409 after that). The expert's rating
    average and count in the directory change in the same transaction."""
    # One review per project: the project row lock and the unique index on reviews.project_id;
    # the rating aggregates change in the same unit of work, by one atomic UPDATE.
    review = await unit_of_work(
        session,
        lambda s: ProjectService(s).review(project_id=project_id, principal=principal, body=body),
    )
    return ReviewResponse.model_validate(review)
