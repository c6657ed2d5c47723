from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response

from chainconsult.experts.schemas import DirectoryFilters, ExpertDetail, ExpertSort, ExpertSummary
from chainconsult.experts.service import ExpertDirectory
from chainconsult.experts.vocabulary import Chain, Currency, Skill
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    TOTAL_COUNT_HEADER,
    NumberedOffset,
    Page,
    offset_with_cursor,
)

router = APIRouter(prefix="/experts", tags=["experts"])


@router.get("", response_model=Page[ExpertSummary])
async def search_experts(
    session: DbSession,
    response: Response,
    skill: Annotated[
        list[Skill], Query(description="Repeat to require several skills.", max_length=10)
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    chain: Annotated[
        list[Chain], Query(description="Repeat to require several chains.", max_length=10)
    ] = [],  # noqa: B006
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description='Full-text search over name, headline and bio ("solidity auditor", '
            '"rust -solana", quoted phrases).',
        ),
    ] = None,
    min_rating: Annotated[Decimal | None, Query(ge=0, le=5)] = None,
    max_rate: Annotated[
        Decimal | None, Query(gt=0, max_digits=12, decimal_places=2, description="Hourly rate.")
    ] = None,
    currency: Annotated[
        Currency | None,
        Query(description="Only rates in this currency; USD when max_rate is given alone."),
    ] = None,
    sort: Annotated[ExpertSort, Query()] = ExpertSort.rating,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: NumberedOffset = None,
) -> Page[ExpertSummary]:
    """The public directory of approved experts. Cursor pagination: pass `next_cursor` back as
    `cursor` with the same filters; pages never repeat or skip an expert, even while others
    are added."""
    if max_rate is not None and currency is None:
        currency = Currency.USD
    filters = DirectoryFilters(
        skills=tuple(skill),
        chains=tuple(chain),
        q=q,
        min_rating=min_rating,
        max_rate=max_rate,
        currency=currency,
        sort=sort,
    )
    if offset is not None:
        offset_with_cursor(offset, cursor)
        page, total = await ExpertDirectory(session).numbered_page(filters, offset, limit)
        response.headers[TOTAL_COUNT_HEADER] = str(total)
        return page
    return await ExpertDirectory(session).search(filters, cursor, limit)


@router.get("/{expert_id}", response_model=ExpertDetail)
async def get_expert(expert_id: uuid.UUID, session: DbSession) -> ExpertDetail:
    """One expert's public profile with the rating summary and the newest reviews."""
    return await ExpertDirectory(session).get(expert_id)
