from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    SQLColumnExpression,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from chainconsult.experts.highlight import query_lexemes
from chainconsult.experts.schemas import DirectoryFilters, ExpertSort
from chainconsult.models.experts import ExpertProfile
from chainconsult.models.projects import Review

# Relevance, tuned on tests/experts/relevance_queries.yaml. ts_rank's weights of the classes
# D, C, B, A of the search vector: bio, skills, headline, name (models/experts.py).
_FIELD_WEIGHTS: ColumnElement[Any] = literal_column("'{0.05, 0.3, 0.6, 1.0}'::real[]")
_LENGTH_NORMALISATION = 1
"""ts_rank divides by 1 + log(words): a long bio listing everything does not win by length."""
RATING_WEIGHT = 0.2
"""A five-star average ranks a match this much higher (x1.2) than an unrated profile."""

# Typo tolerance: a query word no profile contains is replaced by the most similar word of
# the names, headlines and skills.
WORD_SIMILARITY = 0.4
"""pg_trgm word similarity for a profile to offer candidates ("soldity" in "Solidity" 0.55)."""
MIN_SIMILARITY = 0.4
"""Similarity a candidate word needs to replace a query word."""
_CANDIDATE_PROFILES = 500
"""Profiles read for candidate words: the best candidate is common to many of them, and the
cost stays bounded on a directory where thousands match."""


def _tsquery(q: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery("english", q)


def relevance(q: str) -> ColumnElement[float]:
    """The relevance score of a profile for ``q``: a double, so a cursor can carry it
    exactly."""
    rank = func.ts_rank(_FIELD_WEIGHTS, ExpertProfile.search, _tsquery(q), _LENGTH_NORMALISATION)
    boost = 1 + cast(ExpertProfile.rating_avg, DOUBLE_PRECISION) * (RATING_WEIGHT / 5)
    return cast(rank, DOUBLE_PRECISION) * boost


def _sort_key(filters: DirectoryFilters) -> tuple[SQLColumnExpression[Any], bool]:
    """What a sort orders by and whether it runs descending (the id follows suit)."""
    if filters.sort is ExpertSort.relevance and filters.q:
        return relevance(filters.q), True
    if filters.sort is ExpertSort.rate:
        return ExpertProfile.hourly_rate_amount, False
    if filters.sort is ExpertSort.newest:
        return ExpertProfile.approved_at, True
    return ExpertProfile.rating_avg, True


_KNOWN_WORDS = text(
    "SELECT w FROM unnest(:words) AS w "
    "WHERE numnode(plainto_tsquery('english', w)) = 0 "
    "OR EXISTS (SELECT FROM expert_profiles p WHERE p.search @@ plainto_tsquery('english', w))"
).bindparams(bindparam("words", type_=ARRAY(Text)))
_CLOSEST_WORDS = text(
    "SELECT m.word, best.candidate FROM unnest(:words) AS m(word) "
    "CROSS JOIN LATERAL ("
    "  SELECT c.candidate FROM ("
    "    SELECT DISTINCT lower(x) AS candidate FROM ("
    "      SELECT p.search_words FROM expert_profiles p WHERE m.word <% p.search_words"
    "      LIMIT :profiles"
    "    ) p, regexp_split_to_table(p.search_words, '[^[:alnum:]]+') AS x"
    "  ) c WHERE similarity(c.candidate, m.word) >= :min_similarity"
    "  ORDER BY similarity(c.candidate, m.word) DESC, c.candidate LIMIT 1"
    ") best"
).bindparams(bindparam("words", type_=ARRAY(Text)))
_TRIGRAMS_KNOWN = "chainconsult.pg_trgm"
_VOCABULARY = text(
    "SELECT DISTINCT lower(x) FROM ("
    "  SELECT p.search_words FROM expert_profiles p LIMIT :profiles"
    ") p, regexp_split_to_table(p.search_words, '[^[:alnum:]]+') AS x WHERE x <> ''"
)
_VOCABULARY_PROFILES = 5000
"""Without pg_trgm the candidate words are compared in Python: a bounded read, enough for the
small directories that run without it (the embedded server)."""


def _trigrams(word: str) -> set[str]:
    # pg_trgm's: lower case, two blanks before and one after the word.
    padded = f"  {word.lower()} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def trigram_similarity(a: str, b: str) -> float:
    """pg_trgm's similarity() of two words: shared trigrams over all of either's."""
    first, second = _trigrams(a), _trigrams(b)
    shared = len(first & second)
    return shared / (len(first) + len(second) - shared)


def closest_in(vocabulary: Sequence[str], word: str) -> str | None:
    """The most similar word of ``vocabulary`` (the first alphabetically among equals), as
    _CLOSEST_WORDS chooses it, if it reaches MIN_SIMILARITY."""
    scored = [(trigram_similarity(candidate, word), candidate) for candidate in vocabulary]
    best = min(scored, key=lambda pair: (-pair[0], pair[1]), default=None)
    return best[1] if best is not None and best[0] >= MIN_SIMILARITY else None


class DirectoryRow(NamedTuple):
    profile: ExpertProfile
    sort_key: Any
    """What the page is ordered by, the id aside: a cursor carries it."""
    lexemes: frozenset[str] | None
    """With a query: the lexemes its matched words stem to (experts/highlight.py)."""


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
    ) -> list[DirectoryRow]:
        """A page of profiles, each with its sort key (what a cursor carries) and, with a
        query, the query's lexemes to highlight."""
        key, descending = _sort_key(filters)
        query = self._filtered(filters).add_columns(key.label("sort_key"))
        if after is not None:
            position = tuple_(key, ExpertProfile.id)
            query = query.where(position < after if descending else position > after)
        if descending:
            query = query.order_by(key.desc(), ExpertProfile.id.desc())
        else:
            query = query.order_by(key.asc(), ExpertProfile.id.asc())
        if offset:
            query = query.offset(offset)
        query = query.limit(limit)
        if not filters.q:
            return [DirectoryRow(p, value, None) for p, value in await self.session.execute(query)]
        # The query's lexemes as PostgreSQL reads it, for the highlights (experts/highlight.py),
        # in the same statement: one value, the same on every row.
        query = query.add_columns(cast(_tsquery(filters.q), Text))
        rows = (await self.session.execute(query)).all()
        lexemes = query_lexemes(rows[0][2]) if rows else frozenset[str]()
        return [DirectoryRow(p, value, lexemes) for p, value, _ in rows]

    async def known_words(self, words: Sequence[str]) -> set[str]:
        """The ``words`` a search may keep as they are: those some profile contains, and
        words full-text search ignores ("the", "for")."""
        result = await self.session.execute(_KNOWN_WORDS, {"words": list(words)})
        return set(result.scalars())

    async def closest_words(self, words: Sequence[str]) -> dict[str, str]:
        """For each of ``words``, the most similar word of the profiles' names, headlines and
        skills, where one is similar enough; by pg_trgm's index where it is installed, else
        by the same similarity computed here over the words."""
        if not await self._has_trigrams():
            vocabulary = list(
                (await self.session.execute(_VOCABULARY, {"profiles": _VOCABULARY_PROFILES}))
                .scalars()
                .all()
            )
            found = {word: closest_in(vocabulary, word) for word in words}
            return {word: closest for word, closest in found.items() if closest is not None}
        # SET LOCAL: the operator <% reads its threshold from a setting; this transaction's.
        await self.session.execute(
            text(f"SET LOCAL pg_trgm.word_similarity_threshold = {WORD_SIMILARITY}")
        )
        result = await self.session.execute(
            _CLOSEST_WORDS,
            {
                "words": list(words),
                "profiles": _CANDIDATE_PROFILES,
                "min_similarity": MIN_SIMILARITY,
            },
        )
        return dict(result.all())

    async def _has_trigrams(self) -> bool:
        # Asked once per pooled connection: the answer changes only with a migration.
        connection = await self.session.connection()
        known = connection.info.get(_TRIGRAMS_KNOWN)
        if known is None:
            query = text("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_trgm')")
            known = bool((await connection.execute(query)).scalar_one())
            connection.info[_TRIGRAMS_KNOWN] = known
        return bool(known)

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
    if sort is ExpertSort.relevance:
        score = float(raw)
        if not math.isfinite(score):
            raise ValueError(raw)
        return score
    return Decimal(raw)
