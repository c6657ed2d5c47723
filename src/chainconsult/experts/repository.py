from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, Select, cast, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from chainconsult.experts.schemas import DirectoryFilters, ExpertSort
from chainconsult.models.experts import ExpertProfile
from chainconsult.models.projects import Review


def _sort_key(sort: ExpertSort) -> tuple[InstrumentedAttribute[Any], bool]:
    """The column a sort orders by and whether it runs descending (the id follows suit)."""
    if sort is ExpertSort.rating:
        return ExpertProfile.rating_avg, True
    if sort is ExpertSort.rate:
        return ExpertProfile.hourly_rate_amount, False
    return ExpertProfile.approved_at, True


class ExpertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _filtered(self, filters: DirectoryFilters) -> Select[ExpertProfile]:
        query = select(ExpertProfile)
        if filters.skills:
            # @> uses the GIN index on skills; every listed skill must be present.
            query = query.where(ExpertProfile.skills.contains([s.value for s in filters.skills]))
        if filters.chains:
            query = query.where(ExpertProfile.chains.contains([c.value for c in filters.chains]))
        if filters.q:
            tsquery = func.websearch_to_tsquery("english", filters.q)
            query = query.where(ExpertProfile.search.bool_op("@@")(tsquery))
        if filters.min_rating is not None:
            query = query.where(ExpertProfile.rating_avg >= filters.min_rating)
        if filters.max_rate is not None:
            query = query.where(ExpertProfile.hourly_rate_amount <= filters.max_rate)
        if filters.currency is not None:
            query = query.where(ExpertProfile.hourly_rate_currency == filters.currency.value)
        return query

    async def page(
        self,
        filters: DirectoryFilters,
        *,
        after: tuple[Any, uuid.UUID] | None,
        limit: int,
        offset: int = 0,
    ) -> list[ExpertProfile]:
        column, descending = _sort_key(filters.sort)
        query = self._filtered(filters)
        if after is not None:
            position = tuple_(column, ExpertProfile.id)
            query = query.where(position < after if descending else position > after)
        if descending:
            query = query.order_by(column.desc(), ExpertProfile.id.desc())
        else:
            query = query.order_by(column.asc(), ExpertProfile.id.asc())
        if offset:
            query = query.offset(offset)
        return list((await self.session.execute(query.limit(limit))).scalars())

    async def count(self, filters: DirectoryFilters) -> int:
        query = select(func.count()).select_from(self._filtered(filters).subquery())
        return int((await self.session.execute(query)).scalar_one())

    async def get(self, expert_id: uuid.UUID) -> ExpertProfile | None:
        return await self.session.get(ExpertProfile, expert_id)

    async def rating_distribution(self, expert_id: uuid.UUID) -> dict[int, int]:
        query = (
            select(Review.rating, func.count())
            .where(Review.expert_id == expert_id)
            .group_by(Review.rating)
        )
        return {int(rating): int(count) for rating, count in await self.session.execute(query)}

    async def recent_reviews(self, expert_id: uuid.UUID, limit: int) -> list[Review]:
        query = (
            select(Review)
            .where(Review.expert_id == expert_id)
            .order_by(Review.created_at.desc(), Review.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def add_rating(self, expert_id: uuid.UUID, rating: int) -> None:
        """Fold one review into the aggregates in a single UPDATE: concurrent reviews of one
        expert each add their own star, none is lost to a read-modify-write race."""
        await self.session.execute(
            update(ExpertProfile)
            .where(ExpertProfile.id == expert_id)
            .values(
                rating_count=ExpertProfile.rating_count + 1,
                rating_sum=ExpertProfile.rating_sum + rating,
                rating_avg=func.round(
                    cast(ExpertProfile.rating_sum + rating, Numeric)
                    / (ExpertProfile.rating_count + 1),
                    2,
                ),
            )
            .execution_options(synchronize_session=False)
        )


def parse_sort_value(sort: ExpertSort, raw: str) -> Any:
    if sort is ExpertSort.newest:
        return dt.datetime.fromisoformat(raw)
    return Decimal(raw)
