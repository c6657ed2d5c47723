"""The expert detail page's reads, one after another against side by side, on the real
schema and repository: the profile (needed first: 404 and the review count), then the
rating distribution and the ten newest reviews, for experts with few and with many reviews.

    .venv/bin/python bench/expert_detail_reads.py --server-url postgresql://postgres@127.0.0.1:5432/postgres

Creates, migrates, seeds and drops its own database.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import time
import uuid

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.config import DatabaseSettings
from chainconsult.experts.repository import ExpertRepository
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.migrate import migrate
from chainconsult.infra.db.parallel import ParallelReader

REVIEW_COUNTS = (40, 5_000, 50_000)

SEED = """
INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active)
SELECT md5('a' || n)::uuid, 'a' || n || '@example.com', 'x', 'A' || n, 'expert', 'free', true
FROM generate_series(1, %(accounts)s) n;
INSERT INTO expert_profiles (id, display_name, headline, bio, skills, chains,
    hourly_rate_amount, hourly_rate_currency, years_experience, portfolio_links, approved_at,
    rating_avg, rating_count, rating_sum)
SELECT md5('a' || n)::uuid, 'A' || n, 'Auditor', 'Audits.', '{solidity}', '{ethereum}', 100,
       'USD', 3, '{}', now(), 0, 0, 0
FROM generate_series(1, 3) n;
INSERT INTO projects (id, client_id, title, description, chains, skills, budget_min,
    budget_max, budget_currency, deadline, visibility, status, expert_id)
SELECT md5('p' || n)::uuid, md5('a' || (4 + n %% 500))::uuid, 'P', 'D', '{ethereum}',
       '{solidity}', 1, 2, 'USD', current_date + 30, 'public', 'completed',
       md5('a' || (CASE WHEN n <= %(small)s THEN 1 WHEN n <= %(small)s + %(medium)s THEN 2
                        ELSE 3 END))::uuid
FROM generate_series(1, %(projects)s) n;
INSERT INTO reviews (id, project_id, expert_id, reviewer_id, rating, text, created_at)
SELECT md5('r' || p.id)::uuid, p.id, p.expert_id, p.client_id,
       1 + abs(hashtext(p.id::text)) %% 5, 'Solid work, clear report, delivered on time.',
       now() - make_interval(secs => abs(hashtext(p.id::text)) %% 100000)
FROM projects p;
"""


async def page(
    repository_session: AsyncSession, reader: ParallelReader | None, expert_id: uuid.UUID
) -> None:
    profile = await ExpertRepository(repository_session).get(expert_id)
    assert profile is not None

    async def distribution(session: AsyncSession) -> dict[int, int]:
        return await ExpertRepository(session).rating_distribution(expert_id)

    async def recent(session: AsyncSession) -> object:
        return await ExpertRepository(session).recent_reviews(expert_id, 10)

    if reader is None:
        await distribution(repository_session)
        await recent(repository_session)
    else:
        await reader.gather(distribution, recent)


async def measure(url: str, expert: int, side_by_side: bool, pages: int) -> float:
    settings = DatabaseSettings.model_validate(
        {"DATABASE_URL": url, "DATABASE_MAX_CONNECTIONS": 20, "SLOW_QUERY_MS": 60_000}
    )
    engine = build_engine(settings)
    maker = build_sessionmaker(engine)
    expert_id = uuid.UUID(hashlib.md5(f"a{expert}".encode()).hexdigest())
    timings: list[float] = []
    for number in range(pages + 10):
        started = time.perf_counter()
        async with maker() as session, session.begin():
            reader = ParallelReader(maker, session) if side_by_side else None
            await page(session, reader, expert_id)
        if number >= 10:  # the first ten warm the pool and caches
            timings.append(time.perf_counter() - started)
    await engine.dispose()
    return statistics.median(timings) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    name = f"bench_detail_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    libpq_url = make_url(args.server_url).set(database=name).render_as_string(False)
    sa_url = libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        migrate(sa_url, echo=lambda _line: None)
        small, medium, large = REVIEW_COUNTS
        with psycopg.connect(libpq_url, autocommit=True) as conn:
            params = {
                "accounts": 503,
                "small": small,
                "medium": medium,
                "projects": small + medium + large,
            }
            for statement in SEED.split(";\n"):
                if statement.strip():
                    conn.execute(statement, params)
            conn.execute("VACUUM ANALYZE")
        print(f"median page time in ms, median of {args.rounds} interleaved rounds")
        print("| reviews of the expert | one after another | side by side |")
        print("|---|---|---|")
        for expert, reviews in enumerate(REVIEW_COUNTS, start=1):
            results: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):
                for side_by_side in (False, True):
                    results[side_by_side].append(
                        await measure(sa_url, expert, side_by_side, args.pages)
                    )
            print(
                f"| {reviews} | {statistics.median(results[False]):.2f} "
                f"| {statistics.median(results[True]):.2f} |",
                flush=True,
            )
    finally:
        with psycopg.connect(args.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    asyncio.run(main())
