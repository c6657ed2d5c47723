from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from chainconsult.accounts.wallets import wallets_tag
from chainconsult.experts.schemas import DirectoryFilters, ExpertDetail, ExpertSort, ExpertSummary
from chainconsult.experts.service import (
    DIRECTORY_PAGE,
    DIRECTORY_TAG,
    EXPERT_PAGE,
    ExpertDirectory,
    expert_tag,
)
from chainconsult.experts.vocabulary import Amount, Chain, Currency, Skill
from chainconsult.infra.cache import AppCache, cached_json
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
)
from chainconsult.infra.text import SingleLine

router = APIRouter(prefix="/experts", tags=["experts"])

_CACHED: dict[int | str, dict[str, object]] = {
    304: {"description": "Not modified: the `If-None-Match` ETag is still current."}
}


SkillFilter = Annotated[
    list[Skill], Query(description="Repeat to require several skills.", max_length=10)
]
ChainFilter = Annotated[
    list[Chain], Query(description="Repeat to require several chains.", max_length=10)
]
SearchText = Annotated[
    # One line of text like any other field (infra/text.py): a NUL or control character is
    # refused by name, pointing at `q`.
    Annotated[str, SingleLine(min_length=1, max_length=200)] | None,
    Query(
        description='Full-text search over name, headline, skills and bio ("solidity '
        'auditor", "rust -solana", quoted phrases). A word no profile contains is read as '
        'the closest word of the names, headlines and skills ("soldity": Solidity). Each '
        "item gains `highlight`.",
    ),
]
# A number, so the document says exactly what is accepted (a Decimal's schema also offers any
# string); DirectoryFilters holds it as a Decimal.
MinRating = Annotated[float | None, Query(ge=0, le=5)]
MaxRate = Annotated[Amount | None, Query(description="Hourly rate.")]
RateCurrency = Annotated[
    Currency | None,
    Query(description="Only rates in this currency; USD when max_rate is given alone."),
]
SortOrder = Annotated[
    ExpertSort | None,
    Query(description="Default: `relevance` with `q`, `rating` without (as is relevance)."),
]
"""The directory's query parameters, shared with its page (experts/pages.py)."""


def directory_filters(
    *,
    skill: list[Skill],
    chain: list[Chain],
    q: str | None,
    min_rating: float | None,
    max_rate: Decimal | None,
    currency: Currency | None,
    sort: ExpertSort | None,
) -> DirectoryFilters:
    if max_rate is not None and currency is None:
        currency = Currency.USD
    return DirectoryFilters(
        skills=tuple(skill),
        chains=tuple(chain),
        q=q,
        min_rating=min_rating,
        max_rate=max_rate,
        currency=currency,
        sort=sort,
    )


async def _directory_query(
    skill: SkillFilter = [],  # noqa: B006 - FastAPI copies query defaults
    chain: ChainFilter = [],  # noqa: B006
    q: SearchText = None,
    min_rating: MinRating = None,
    max_rate: MaxRate = None,
    currency: RateCurrency = None,
    sort: SortOrder = None,
) -> DirectoryFilters:
    # async: FastAPI runs a plain ``def`` dependency on its thread pool.
    return directory_filters(
        skill=skill,
        chain=chain,
        q=q,
        min_rating=min_rating,
        max_rate=max_rate,
        currency=currency,
        sort=sort,
    )


DirectoryQuery = Annotated[DirectoryFilters, Depends(_directory_query)]
"""The directory's filters from its query parameters: the v2 list and v1's numbered pages
(experts/versions.py)."""


@router.get("", response_model=Page[ExpertSummary], responses=_CACHED)
async def search_experts(
    request: Request,
    session: DbSession,
    cache: AppCache,
    filters: DirectoryQuery,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[ExpertSummary] | Response:
    """The public directory of approved experts. Cursor pagination: pass `next_cursor` back as
    `cursor` with the same filters; pages never repeat or skip an expert, even while others
    are added.

    Served from the cache; any change to an expert shows on the next request. Responses carry
    an `ETag` and `Cache-Control: public, no-cache`: send the ETag back in `If-None-Match` to
    get an empty 304 while the page is unchanged."""
    directory = ExpertDirectory(session)
    return await cached_json(
        request,
        DIRECTORY_PAGE,
        cache=cache,
        arguments={"filters": filters, "cursor": cursor, "limit": limit},
        tags=[DIRECTORY_TAG],
        load=lambda: directory.search(filters, cursor, limit),
        repeatable=True,
    )


@router.get("/{expert_id}", response_model=ExpertDetail, responses=_CACHED)
async def get_expert(
    expert_id: uuid.UUID, request: Request, session: DbSession, cache: AppCache
) -> Response:
    """One expert's public profile with the rating summary and the newest reviews. Cached,
    with `ETag` and `If-None-Match` as for the list."""
    directory = ExpertDirectory(session)
    return await cached_json(
        request,
        EXPERT_PAGE,
        cache=cache,
        arguments=[expert_id],
        tags=[expert_tag(expert_id), wallets_tag(expert_id)],
        load=lambda: directory.get(expert_id),
        repeatable=True,
    )
