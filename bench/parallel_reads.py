"""Parallel reads against sequential reads, side by side in one run.

An expert-detail-shaped page needs three independent reads: the profile (primary key), the
rating statistics (an aggregate over the expert's reviews) and the ten newest reviews. The
same three reads run one after another on one session, and through ``ParallelReader`` on
separate pooled connections, first one request at a time (latency) and then with many
requests at once (throughput, where the extra connections compete with other requests).

    .venv/bin/python bench/parallel_reads.py --server-url postgresql://postgres@127.0.0.1:5432/postgres

It creates a scratch database on that server, seeds it, measures and drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.config import DatabaseSettings
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.parallel import ParallelReader

EXPERTS = 5_000
REVIEWS_PER_EXPERT = 40
# A few experts with many reviews make the statistics read cost something (~ms), as a
# popular expert's page does.
POPULAR_EXPERTS = 50
POPULAR_REVIEWS = 5_000

MODES = ("sequential", "always side by side", "ParallelReader")

SCHEMA = """
CREATE TABLE bench_experts (
    id int PRIMARY KEY, display_name text, headline text, bio text, hourly_rate numeric(12, 2)
);
CREATE TABLE bench_reviews (
    id bigserial PRIMARY KEY, expert_id int NOT NULL REFERENCES bench_experts(id),
    rating smallint NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL
);
CREATE INDEX bench_reviews_expert_created ON bench_reviews (expert_id, created_at DESC);
"""


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO bench_experts SELECT n, 'Expert ' || n, 'Solidity auditor', "
            "repeat('Smart contract security. ', 20), 100 + n %% 200 "
            "FROM generate_series(1, %s) n",
            (EXPERTS,),
        )
        conn.execute(
            "INSERT INTO bench_reviews (expert_id, rating, body, created_at) "
            "SELECT 1 + n %% %s, 1 + n %% 5, 'Great work, delivered on time.', "
            "now() - make_interval(mins => n) FROM generate_series(1, %s) n",
            (EXPERTS, EXPERTS * REVIEWS_PER_EXPERT),
        )
        conn.execute(
            "INSERT INTO bench_reviews (expert_id, rating, body, created_at) "
            "SELECT 1 + n %% %s, 1 + n %% 5, 'Popular.', now() - make_interval(secs => n) "
            "FROM generate_series(1, %s) n",
            (POPULAR_EXPERTS, POPULAR_EXPERTS * POPULAR_REVIEWS),
        )
        conn.execute("VACUUM ANALYZE")


class AlwaysSideBySide(ParallelReader):
    """The helper without its load guard: shows what running side by side costs or saves
    by itself."""

    def _pool_has_room(self, wanted: int) -> bool:
        return True


def reads(expert_id: int, extra_ms: int) -> list[Callable[[AsyncSession], Awaitable[Any]]]:
    """The three reads; ``extra_ms`` adds that much server time to each (one pg_sleep),
    standing in for reads that are slow on the server (cold cache, big aggregates)."""
    params = {"id": expert_id, "pause": extra_ms / 1000}
    pause = "WITH pause AS MATERIALIZED (SELECT pg_sleep(:pause)) " if extra_ms else ""
    joined = ", pause" if extra_ms else ""

    async def profile(session: AsyncSession) -> Any:
        query = text(f"{pause}SELECT e.* FROM bench_experts e{joined} WHERE e.id = :id")
        return (await session.execute(query, params)).one()

    async def rating_stats(session: AsyncSession) -> Any:
        query = text(
            f"{pause}SELECT count(*), avg(rating), count(*) FILTER (WHERE rating = 5) "
            f"FROM bench_reviews r{joined} WHERE r.expert_id = :id"
        )
        return (await session.execute(query, params)).one()

    async def recent_reviews(session: AsyncSession) -> Any:
        query = text(
            f"{pause}SELECT r.id, r.rating, r.body, r.created_at FROM bench_reviews r{joined} "
            "WHERE r.expert_id = :id ORDER BY r.created_at DESC LIMIT 10"
        )
        return (await session.execute(query, params)).all()

    return [profile, rating_stats, recent_reviews]


async def measure(
    url: str, *, mode: str, popular: bool, extra_ms: int, concurrency: int, requests: int
) -> dict[str, float]:
    settings = DatabaseSettings.model_validate(
        {
            "DATABASE_URL": url,
            "DATABASE_MAX_CONNECTIONS": 20,
            "DATABASE_MAX_OVERFLOW": 10,
            "SLOW_QUERY_MS": 60_000,
        }
    )
    engine = build_engine(settings)
    maker = build_sessionmaker(engine)
    latencies: list[float] = []
    side_by_side: list[bool] = []
    rng = random.Random(7)
    top = POPULAR_EXPERTS if popular else EXPERTS

    async def page() -> None:
        expert_id = rng.randint(1, top)
        started = time.perf_counter()
        async with maker() as session, session.begin():
            # The request's own session has already done a read (the auth lookup).
            await session.execute(text("SELECT 1"))
            if mode != "sequential":
                reader = (AlwaysSideBySide if mode == "always side by side" else ParallelReader)(
                    maker, session
                )
                await reader.gather(*reads(expert_id, extra_ms))
                side_by_side.append(reader.last_run_parallel)
            else:
                for read in reads(expert_id, extra_ms):
                    await read(session)
        latencies.append(time.perf_counter() - started)

    async def user(count: int) -> None:
        for _ in range(count):
            await page()

    for _ in range(20):  # warm the pool and the caches
        await page()
    latencies.clear()
    side_by_side.clear()
    started = time.perf_counter()
    await asyncio.gather(*(user(requests // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    ordered = sorted(latencies)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "side_by_side": sum(side_by_side) / len(side_by_side) if side_by_side else 0.0,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    name = f"bench_parallel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    libpq_url = make_url(args.server_url).set(database=name).render_as_string(False)
    try:
        seed(libpq_url)
        sa_url = libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)
        print(f"median of {args.rounds} interleaved rounds per cell")
        print("| data | concurrency | mode | req/s | p50 ms | p95 ms | ran side by side |")
        print("|---|---|---|---|---|---|---|")
        cases = [
            ("typical experts", False, 0),
            ("popular experts", True, 0),
            ("typical + 5 ms server time per read", False, 5),
        ]
        for label, popular, extra_ms in cases:
            for concurrency in (1, 16):
                rounds: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
                for _ in range(args.rounds):
                    for mode in MODES:
                        rounds[mode].append(
                            await measure(
                                sa_url,
                                mode=mode,
                                popular=popular,
                                extra_ms=extra_ms,
                                concurrency=concurrency,
                                requests=args.requests // (4 if concurrency == 1 else 1),
                            )
                        )
                for mode in MODES:
                    cell = {
                        key: statistics.median(r[key] for r in rounds[mode])
                        for key in ("rps", "p50_ms", "p95_ms", "side_by_side")
                    }
                    print(
                        f"| {label} "
                        f"| {concurrency} | {mode} "
                        f"| {cell['rps']:.0f} | {cell['p50_ms']:.2f} | {cell['p95_ms']:.2f} "
                        f"| {cell['side_by_side']:.0%} |",
                        flush=True,
                    )
    finally:
        with psycopg.connect(args.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    asyncio.run(main())
