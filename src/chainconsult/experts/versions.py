"""The v1 form of the expert directory: numbered pages and a bare array, `name` for
`display_name`, the hourly rate as a whole number of US dollars, and no search `highlight`.
The numbered pages are served here, by the v1 layer's own route: v2 pages by cursor only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from chainconsult.experts.endpoints import DirectoryQuery
from chainconsult.experts.schemas import ExpertSummary
from chainconsult.experts.service import ExpertDirectory
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    TOTAL_COUNT_HEADER,
    NumberedOffset,
    Page,
)
from chainconsult.infra.versioning import (
    ListShape,
    NewInV2,
    ObjectShape,
    PageNumbers,
    RenamedField,
    V1Route,
    WholeMoney,
)

EXPERT_V1 = ObjectShape(
    (
        RenamedField(v1="name", v2="display_name"),
        WholeMoney(v1="hourly_rate", v2="hourly_rate"),
    )
)
DIRECTORY_ITEM_V1 = ObjectShape((*EXPERT_V1.changes, NewInV2("highlight")))

V1_ROUTES = (
    V1Route(
        "GET",
        "/experts",
        own_route=True,
        query=(PageNumbers(),),
        response=ListShape(DIRECTORY_ITEM_V1),
    ),
    V1Route("GET", "/experts/{expert_id}", response=EXPERT_V1),
)

V1_ROUTER = APIRouter(prefix="/api/v1", include_in_schema=False)
"""Reached only through the versioning middleware, which has turned ``page``/``per_page``
into ``offset``/``limit``; its answer goes back out converted to the v1 shape."""


@V1_ROUTER.get("/experts", response_model=Page[ExpertSummary])
async def numbered_directory_page(
    session: DbSession,
    response: Response,
    filters: DirectoryQuery,
    offset: NumberedOffset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[ExpertSummary]:
    # Not cached: the deprecated surface, and its total would need its own invalidation.
    page, total = await ExpertDirectory(session).numbered_page(filters, offset, limit)
    response.headers[TOTAL_COUNT_HEADER] = str(total)
    return page
