"""The public expert directory. ``search`` and ``get`` are pure reads that return schema
objects, so a cache can wrap them (the cache key is the filters, cursor and limit)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.wallets import WalletService
from chainconsult.errors import NotFound
from chainconsult.experts.highlight import highlight
from chainconsult.experts.repository import DirectoryRow, ExpertRepository, parse_sort_value
from chainconsult.experts.schemas import (
    DirectoryFilters,
    ExpertBasics,
    ExpertDetail,
    ExpertSummary,
    ReviewSummary,
)
from chainconsult.experts.wallets import payout_wallet_verified
from chainconsult.infra.cache import body_query, invalidate_after_commit
from chainconsult.infra.pagination import Keyset, Page

RECENT_REVIEWS = 10

DIRECTORY_TAG = "directory"
"""Carried by every cached directory list page: any expert change may move any page."""
DIRECTORY_CACHE_TTL_S = 300
"""Writes through the app invalidate at once; this bounds only writes made around it (SQL,
`chainconsult demo-data` against a running server)."""
DIRECTORY_PAGE = body_query("experts.list", Page[ExpertSummary], ttl=DIRECTORY_CACHE_TTL_S)
EXPERT_PAGE = body_query("experts.detail", ExpertDetail, ttl=DIRECTORY_CACHE_TTL_S)


def expert_tag(expert_id: uuid.UUID) -> str:
    return f"expert:{expert_id}"


def directory_changed(session: AsyncSession, expert_id: uuid.UUID) -> None:
    """Drop the cached directory pages and this expert's profile when ``session`` commits, in
    every process. Every write that changes what the directory shows calls it: approval,
    a new profile revision, a review, erasure."""
    invalidate_after_commit(session, [expert_tag(expert_id), DIRECTORY_TAG])


# Query words typo tolerance looks at: letters only, at least four (shorter ones match too
# many words by a letter or two).
_CORRECTABLE_WORD = re.compile(r"[^\W\d_]{4,}")


def _cursor_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _summary(row: DirectoryRow) -> ExpertSummary:
    summary = ExpertSummary.model_validate(row.profile)
    if row.lexemes is not None:
        # Only the rows a page shows: the extra row a cursor page reads is never rendered.
        summary.highlight = highlight(row.profile.headline, row.profile.bio, row.lexemes)
    return summary


class ExpertDirectory:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = ExpertRepository(session)

    async def search(
        self, filters: DirectoryFilters, cursor: str | None, limit: int
    ) -> Page[ExpertSummary]:
        order: Keyset[DirectoryRow] = Keyset(
            f"experts:{filters.sort}",
            lambda row: (_cursor_value(row.sort_key), row.profile.id),
            (partial(parse_sort_value, filters.sort), uuid.UUID),
        )
        after = order.after(cursor)
        filters, rows = await self._rows(filters, after=after, limit=limit + 1)
        return order.page(Page[ExpertSummary], rows, limit, _summary)

    async def numbered_page(
        self, filters: DirectoryFilters, offset: int, limit: int
    ) -> tuple[Page[ExpertSummary], int]:
        """A page by position, with the total: API v1's numbered pages. Unlike cursors,
        offsets can repeat or skip an expert while others are added; v1 always had that."""
        filters, rows = await self._rows(filters, after=None, limit=limit, offset=offset)
        page = Page[ExpertSummary](data=[_summary(row) for row in rows])
        return page, await self.repository.count(filters)

    async def _rows(
        self,
        filters: DirectoryFilters,
        *,
        after: tuple[Any, uuid.UUID] | None,
        limit: int,
        offset: int = 0,
    ) -> tuple[DirectoryFilters, list[DirectoryRow]]:
        """A page, and the filters that found it: when a query finds nothing, the query
        with its misspelt words corrected. (With results, every word of the query was found
        somewhere, so there is nothing to correct: the common case costs no extra query.)"""
        page = partial(self.repository.page, after=after, limit=limit, offset=offset)
        rows = await page(filters)
        if rows or not filters.q:
            return filters, rows
        spelled = await self._spelled(filters)
        if spelled == filters:
            return filters, rows
        return spelled, await page(spelled)

    async def _spelled(self, filters: DirectoryFilters) -> DirectoryFilters:
        """``filters`` with each query word that no profile contains replaced by the closest
        word of the names, headlines and skills (trigram similarity): "soldity" finds Solidity."""
        if not filters.q:
            return filters
        words = {match.group().lower() for match in _CORRECTABLE_WORD.finditer(filters.q)}
        if not words:
            return filters
        unknown = sorted(words - await self.repository.known_words(sorted(words)))
        if not unknown:
            return filters
        closest = await self.repository.closest_words(unknown)
        if not closest:
            return filters
        q = _CORRECTABLE_WORD.sub(
            lambda match: closest.get(match.group().lower(), match.group()), filters.q
        )
        return filters.model_copy(update={"q": q})

    async def get(self, expert_id: uuid.UUID) -> ExpertDetail:
        profile = await self.repository.get(expert_id)
        if profile is None:
            raise NotFound("No such expert.")
        distribution = await self.repository.rating_distribution(expert_id)
        reviews = await self.repository.recent_reviews(expert_id, RECENT_REVIEWS)
        summary = ExpertBasics.model_validate(profile)
        return ExpertDetail(
            **summary.model_dump(),
            bio=profile.bio,
            portfolio_links=profile.portfolio_links,
            rating_distribution={str(star): distribution.get(star, 0) for star in range(5, 0, -1)},
            recent_reviews=[ReviewSummary.model_validate(review) for review in reviews],
            payout_wallet_verified=payout_wallet_verified(
                profile.wallet_address,
                profile.wallet_chain,
                await WalletService(self.repository.session).linked_addresses(expert_id),
            ),
        )
