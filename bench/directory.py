"""Expert directory reads on a large directory: typical filter combinations, and deep pages
by keyset cursor (what the API does) against the same page by OFFSET (what it avoids), side
by side in one run. Goes through ExpertDirectory.search, the function the API (and any cache
in front of it) calls, on a real PostgreSQL.

    .venv/bin/python bench/directory.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--experts 20000] [--repeat 200]

Creates its own database on the server (migrated, filled with generated experts) and drops
it afterwards."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from chainconsult.config import DatabaseSettings
from chainconsult.experts.schemas import DirectoryFilters, ExpertSort
from chainconsult.experts.service import ExpertDirectory
from chainconsult.experts.vocabulary import Chain, Skill
from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.db.migrate import migrate
from chainconsult.models import ExpertProfile

FILL = """
INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active)
SELECT md5('e' || g)::uuid, 'bench' || g || '@example.com', 'x',
       'Expert ' || g, 'expert', 'free', true
FROM generate_series(1, :n) g;
INSERT INTO expert_profiles (id, display_name, headline, bio, skills, chains,
    hourly_rate_amount, hourly_rate_currency, years_experience, portfolio_links, approved_at,
    rating_avg, rating_count, rating_sum)
SELECT md5('e' || g)::uuid, 'Expert ' || g,
       (ARRAY['Solidity auditor', 'Rust engineer', 'ZK researcher', 'DeFi designer'])[1 + g % 4],
       'Builds ' || (ARRAY['lending protocols', 'bridges', 'wallets', 'indexers',
                           'rollups'])[1 + g % 5] || ' and reviews smart contracts.',
       ARRAY[(ARRAY['solidity','rust','zk-proofs','defi','move','cairo'])[1 + g % 6],
             (ARRAY['smart-contract-audit','mev','bridges','wallets'])[1 + g % 4]],
       ARRAY[(ARRAY['ethereum','solana','arbitrum','base','sui','starknet','polygon'])[1 + g % 7]],
       50 + (g * 7919) % 350, 'USD', g % 15, '{}',
       now() - (g || ' minutes')::interval,
       round(((g * 31) % 401) / 100.0 + 1, 2), 1 + g % 20, 0
FROM generate_series(1, :n) g;
ANALYZE expert_profiles;
"""


async def timed(repeat: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def run(url: str, experts: int, repeat: int) -> None:
    engine = build_engine(DatabaseSettings(url=url), application_name="bench")
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as conn:
        for statement in FILL.strip().split(";\n"):
            if statement.strip():
                await conn.execute(text(statement), {"n": experts})

    async def search(filters: DirectoryFilters, cursor: str | None = None) -> Any:
        async with maker() as session:
            return await ExpertDirectory(session).search(filters, cursor, 20)

    cases = {
        "no filter, by rating": DirectoryFilters(),
        "skill=solidity": DirectoryFilters(skills=(Skill.solidity,)),
        "skill + chain": DirectoryFilters(skills=(Skill.rust,), chains=(Chain.solana,)),
        "q='lending auditor' (FTS)": DirectoryFilters(q="lending auditor"),
        "min_rating=4 & max_rate=150, by rate": DirectoryFilters(
            min_rating=4, max_rate=150, sort=ExpertSort.rate
        ),
    }
    print(f"{experts} experts, {repeat} calls each, page size 20")
    print("| query | p50 ms | p95 ms |")
    print("|---|---|---|")
    for label, filters in cases.items():
        p50, p95 = await timed(repeat, lambda f=filters: search(f))  # type: ignore[misc]
        print(f"| {label} | {p50:.2f} | {p95:.2f} |")

    # Walk to a deep page once to get its cursor, then time that page both ways.
    depth_pages = min(experts // 20 - 1, 500)
    cursor = None
    for _ in range(depth_pages):
        cursor = (await search(DirectoryFilters(), cursor)).next_cursor

    async def by_offset() -> Any:
        async with maker() as session:
            query = (
                select(ExpertProfile)
                .order_by(ExpertProfile.rating_avg.desc(), ExpertProfile.id.desc())
                .offset(depth_pages * 20)
                .limit(21)
            )
            return list((await session.execute(query)).scalars())

    keyset = await timed(repeat, lambda: search(DirectoryFilters(), cursor))
    offset = await timed(repeat, by_offset)
    print()
    print(f"page {depth_pages + 1} (row {depth_pages * 20}), by rating:")
    print("| method | p50 ms | p95 ms |")
    print("|---|---|---|")
    print(f"| keyset cursor (the API) | {keyset[0]:.2f} | {keyset[1]:.2f} |")
    print(f"| OFFSET (for comparison) | {offset[0]:.2f} | {offset[1]:.2f} |")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--experts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    name = f"bench_dir_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url.replace("postgresql://", "postgresql+psycopg://", 1), echo=lambda _: None)
        asyncio.run(run(url, args.experts, args.repeat))
    finally:
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
