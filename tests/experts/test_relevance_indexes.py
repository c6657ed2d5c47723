"""Issue 23: every statement a relevance search sends uses an index, checked with EXPLAIN on
10,000 profiles written like the demo ones: the ranked pages by cursor with their
highlights, the words a query that found nothing keeps, the closest words of a misspelt one
(pg_trgm), and v1's count."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from chainconsult.admin._demo_profiles import expert_texts
from chainconsult.experts.schemas import DirectoryFilters, ExpertSort
from chainconsult.experts.service import ExpertDirectory
from chainconsult.experts.vocabulary import Chain, Skill
from chainconsult.infra.db.engine import build_engine
from tests.conftest import MigratedDatabases, make_settings, missing_service
from tests.infra.db.explain import Plan, plans_of

ROWS = 10_000


def _profiles(rows: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(23)
    for n in range(rows):
        skills = rng.sample(list(Skill), rng.randint(2, 4))
        chains = rng.sample(list(Chain), rng.randint(1, 3))
        headline, bio = expert_texts(rng, skills, chains, rng.randint(1, 12))
        rating = rng.choice(("0", "3.00", "4.00", "4.50", "5.00"))
        count = 0 if rating == "0" else 2
        yield (
            uuid.UUID(int=n + 1),
            f"Expert {n}",
            headline,
            bio,
            [s.value for s in skills],
            [c.value for c in chains],
            rating,
            count,
            int(float(rating) * count),
            dt.datetime(2026, 1, 1, tzinfo=dt.UTC) - dt.timedelta(minutes=n),
        )


@pytest.fixture(scope="module")
def search_database(migrated_databases: MigratedDatabases) -> Iterator[str]:
    """A database of its own, migrated and filled once for the module, then dropped."""
    rendered = migrated_databases.create("cc_relevance")
    try:
        with psycopg.connect(rendered.replace("+psycopg", ""), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone():
                missing_service("pg_trgm is not installed on the test server")
            rows = list(_profiles(ROWS))
            with conn.cursor().copy(
                "COPY accounts (id, email, password_hash, display_name, role, plan, is_active) "
                "FROM STDIN"
            ) as copy:
                for row in rows:
                    email = f"{row[0]}@example.com"
                    copy.write_row((row[0], email, "x", row[1], "expert", "free", True))
            with conn.cursor().copy(
                "COPY expert_profiles (id, display_name, headline, bio, skills, chains, "
                "rating_avg, rating_count, rating_sum, approved_at, hourly_rate_amount, "
                "hourly_rate_currency, years_experience, portfolio_links) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row((*row, 100, "USD", 5, []))
            # What autovacuum does to a live database: statistics, and GIN pending lists
            # merged into the index (until then the planner rightly prices GIN scans high).
            conn.execute("VACUUM ANALYZE")
        yield rendered
    finally:
        migrated_databases.drop(rendered)


@pytest.fixture
async def engine(search_database: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(make_settings(search_database, tmp_path).database)
    yield engine
    await engine.dispose()


async def directory_plans(
    engine: AsyncEngine, filters: DirectoryFilters, *, pages: int = 1, numbered: bool = False
) -> list[Plan]:
    """The plans of the directory's statements on profiles for ``pages`` pages by cursor."""

    async def read(session: AsyncSession) -> None:
        directory = ExpertDirectory(session)
        if numbered:
            await directory.numbered_page(filters, 40, 20)
            return
        cursor = None
        for _ in range(pages):
            cursor = (await directory.search(filters, cursor, 20)).next_cursor
            assert cursor is not None

    return [plan for plan in await plans_of(engine, read) if "expert_profiles" in plan.statement]


def assert_indexed(plans: list[Plan], expected: dict[str, str]) -> None:
    """Each plan uses the index ``expected`` gives for a word of its statement (the first
    that matches), and none scans the profiles sequentially."""
    assert plans
    for plan in plans:
        index = next(index for marker, index in expected.items() if marker in plan.statement)
        assert plan.indexes() & set(index.split("|")), str(plan)
        assert not plan.seq_scanned(), str(plan)


SEARCH = "ix_expert_profiles_search"
BY_SHAPE = {
    "<%": "ix_expert_profiles_search_words",  # closest words of a misspelt one
    "numnode": SEARCH,  # the words a query keeps
    "@@": SEARCH,  # pages and counts
}


@pytest.mark.parametrize(
    ("filters", "pages", "numbered", "pages_index"),
    [
        (DirectoryFilters(q="solidity auditor"), 1, False, SEARCH),
        (DirectoryFilters(q="zk proof"), 3, False, SEARCH),
        (DirectoryFilters(q="soldity"), 2, False, SEARCH),
        (DirectoryFilters(q="chainlnk oracle", skills=(Skill.oracles,)), 1, False, SEARCH),
        # A common word by rating: walking the rating index and skipping non-matches is as
        # good a plan.
        (
            DirectoryFilters(q="rollup", sort=ExpertSort.rating),
            2,
            False,
            f"{SEARCH}|ix_expert_profiles_rating_sort",
        ),
        (DirectoryFilters(q="subgraph"), 1, True, SEARCH),
    ],
    ids=["first page", "pages by cursor", "misspelt", "with a filter", "by rating", "v1 count"],
)
async def test_relevance_search_statements_use_their_indexes(
    engine: AsyncEngine, filters: DirectoryFilters, pages: int, numbered: bool, pages_index: str
) -> None:
    plans = await directory_plans(engine, filters, pages=pages, numbered=numbered)

    assert_indexed(plans, {**BY_SHAPE, "@@": pages_index})
    shapes = {marker for plan in plans for marker in BY_SHAPE if marker in plan.statement}
    assert "@@" in shapes
    if filters.q == "soldity":
        assert {"numnode", "<%"} <= shapes
