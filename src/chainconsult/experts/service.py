"""The public expert directory. ``search`` and ``get`` are pure reads that return schema
objects, so a cache can wrap them (the cache key is the filters, cursor and limit)."""

from __future__ import annotations

import uuid
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.errors import NotFound
from chainconsult.experts.repository import ExpertRepository, parse_sort_value
from chainconsult.experts.schemas import (
    DirectoryFilters,
    ExpertDetail,
    ExpertSort,
    ExpertSummary,
    ReviewSummary,
)
from chainconsult.infra.pagination import Page, decode_cursor, encode_cursor
from chainconsult.models.experts import ExpertProfile

RECENT_REVIEWS = 10


def _sort_value(profile: ExpertProfile, sort: ExpertSort) -> str:
    if sort is ExpertSort.rating:
        return str(profile.rating_avg)
    if sort is ExpertSort.rate:
        return str(profile.hourly_rate_amount)
    return profile.approved_at.isoformat()


class ExpertDirectory:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = ExpertRepository(session)

    async def search(
        self, filters: DirectoryFilters, cursor: str | None, limit: int
    ) -> Page[ExpertSummary]:
        kind = f"experts:{filters.sort}"
        after = None
        if cursor is not None:
            value, expert_id = decode_cursor(
                cursor, kind, partial(parse_sort_value, filters.sort), uuid.UUID
            )
            after = (value, expert_id)
        rows = await self.repository.page(filters, after=after, limit=limit + 1)
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(kind, _sort_value(last, filters.sort), last.id)
        return Page[ExpertSummary](
            data=[ExpertSummary.model_validate(row) for row in rows[:limit]],
            next_cursor=next_cursor,
        )

    async def numbered_page(
        self, filters: DirectoryFilters, offset: int, limit: int
    ) -> tuple[Page[ExpertSummary], int]:
        """A page by position, with the total: API v1's numbered pages. Unlike cursors,
        offsets can repeat or skip an expert while others are added; v1 always had that."""
        rows = await self.repository.page(filters, after=None, limit=limit, offset=offset)
        page = Page[ExpertSummary](data=[ExpertSummary.model_validate(row) for row in rows])
        return page, await self.repository.count(filters)

    async def get(self, expert_id: uuid.UUID) -> ExpertDetail:
        profile = await self.repository.get(expert_id)
        if profile is None:
            raise NotFound("No such expert.")
        distribution = await self.repository.rating_distribution(expert_id)
        reviews = await self.repository.recent_reviews(expert_id, RECENT_REVIEWS)
        summary = ExpertSummary.model_validate(profile)
        return ExpertDetail(
            **summary.model_dump(),
            bio=profile.bio,
            portfolio_links=profile.portfolio_links,
            rating_distribution={str(star): distribution.get(star, 0) for star in range(5, 0, -1)},
            recent_reviews=[ReviewSummary.model_validate(review) for review in reviews],
        )
