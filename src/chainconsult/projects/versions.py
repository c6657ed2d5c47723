"""The v1 form of project requests: `budget` is one number of US dollars (v2: a range), v1
lists only the open public projects by numbered page, and v1 never had invitations or
visibility (its projects are all public). Its numbered pages are served here, by the v1
layer's own route: v2 pages by cursor only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from chainconsult.accounts.auth import CurrentAccount
from chainconsult.experts.vocabulary import AMOUNT_MAXIMUM, AMOUNT_STEP, Chain, Skill
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    TOTAL_COUNT_HEADER,
    NumberedOffset,
    Page,
)
from chainconsult.infra.versioning import (
    FixedParameter,
    ListShape,
    NewInV2,
    ObjectShape,
    PageNumbers,
    RangeAsNumber,
    V1Route,
)
from chainconsult.projects.board import OpenProjects
from chainconsult.projects.schemas import ProjectFilters, ProjectResponse

PROJECT_V1 = ObjectShape(
    (
        RangeAsNumber(v1="budget", v2="budget", maximum=AMOUNT_MAXIMUM, step=AMOUNT_STEP),
        NewInV2("visibility", v1_value="public", has_v1_value=True),
        NewInV2("invited_experts"),
    )
)

V1_ROUTES = (
    V1Route(
        "GET",
        "/projects",
        own_route=True,
        query=(FixedParameter("view", "open", "open public projects"), PageNumbers()),
        response=ListShape(PROJECT_V1),
    ),
    V1Route("POST", "/projects", request=PROJECT_V1, response=PROJECT_V1),
)

V1_ROUTER = APIRouter(prefix="/api/v1", include_in_schema=False)
"""Reached only through the versioning middleware, which has turned ``page``/``per_page``
into ``offset``/``limit``; its answer goes back out converted to the v1 shape."""


@V1_ROUTER.get("/projects", response_model=Page[ProjectResponse])
async def numbered_open_projects(
    principal: CurrentAccount,
    session: DbSession,
    response: Response,
    skill: Annotated[list[Skill], Query(max_length=10)] = [],  # noqa: B006
    chain: Annotated[list[Chain], Query(max_length=10)] = [],  # noqa: B006
    offset: NumberedOffset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[ProjectResponse]:
    # The open public projects only (v1 had no other listing); not cached, like the
    # directory's numbered pages.
    filters = ProjectFilters(skills=tuple(skill), chains=tuple(chain))
    page, total = await OpenProjects(session).numbered_page(filters, offset, limit)
    response.headers[TOTAL_COUNT_HEADER] = str(total)
    return page
