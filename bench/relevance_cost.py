"""Cost of one uncached relevance search (what a cache miss of `GET /api/v2/experts?q=` runs):
``ExpertDirectory.search`` for each query of tests/experts/relevance_queries.yaml in turn, one
at a time on one connection, side by side with another source tree in the same run.

    .venv/bin/python -m bench.relevance_cost [--baseline-src DIR] [--searches 640] [--seconds 8]
        [--rounds 3] [--server postgresql://postgres@127.0.0.1:5432/postgres]

``--baseline-src`` is a src/ directory of another version, for example:

    mkdir -p /tmp/cc-before && git archive main src | tar -x -C /tmp/cc-before
    .venv/bin/python -m bench.relevance_cost --baseline-src /tmp/cc-before/src

Creates its own database (migrated, filled by `chainconsult demo-data`), drops it at the end.
Each round runs each tree in a fresh process (alternating, so drift on a shared machine hits
both); per search it prints the process's CPU (Python: SQLAlchemy, the highlights, pydantic),
the wall time (that plus PostgreSQL's share and the round trips) and the statements sent.

Then the cached route without Redis, where each process keeps an entry one second: 16 tasks
send `GET /api/v2/experts?q=` for the same queries to the app in process (its ASGI callable
awaited: no server, no socket) for ``--seconds``; it prints their p99, the searches run
(cache misses, reloads included) and the callers that waited for another's search."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench._asgi import asgi_status
from bench._trees import child_in_tree
from bench.hot_path import demo_database, load_average

COLUMNS = {
    "cpu_us": "CPU µs",
    "wall_us": "wall µs",
    "statements": "statements",
    "cached_p99_ms": "cached p99 ms",
    "searches_per_s": "searches/s",
    "waited_per_s": "waited/s",
}
CACHED_TASKS = 16


async def _cached(queries: list[str], seconds: float) -> dict[str, float]:
    """The cached route under CACHED_TASKS callers at once, in process."""
    from asgi_lifespan import LifespanManager

    from chainconsult.app import create_app
    from chainconsult.infra.resources import resources_of

    paths = [f"/api/v2/experts?{urlencode({'q': q})}" for q in queries]
    app = create_app()
    samples: list[float] = []
    async with LifespanManager(app) as manager:

        async def caller(offset: int, until: float, record: bool) -> None:
            n = offset
            while time.perf_counter() < until:
                started = time.perf_counter()
                if await asgi_status(manager.app, "GET", paths[n % len(paths)]) != 200:
                    raise SystemExit(f"GET {paths[n % len(paths)]} failed")
                if record:
                    samples.append((time.perf_counter() - started) * 1000)
                n += 1

        for duration, record in ((2.0, False), (seconds, True)):
            stats = resources_of(app).cache.stats().get("experts.list")
            before = (stats.misses, stats.coalesced) if stats else (0, 0)
            until = time.perf_counter() + duration
            await asyncio.gather(*(caller(i, until, record) for i in range(CACHED_TASKS)))
        stats = resources_of(app).cache.stats()["experts.list"]
    samples.sort()
    return {
        "cached_p99_ms": samples[int(len(samples) * 0.99)],
        "searches_per_s": (stats.misses - before[0]) / seconds,
        "waited_per_s": (stats.coalesced - before[1]) / seconds,
    }


async def _measure(count: int, seconds: float) -> dict[str, float]:
    import yaml
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from chainconsult.config import DatabaseSettings
    from chainconsult.experts.schemas import DirectoryFilters
    from chainconsult.experts.service import ExpertDirectory
    from chainconsult.infra.db.engine import build_engine

    test_set = Path(__file__).parents[1] / "tests" / "experts" / "relevance_queries.yaml"
    queries = [case["query"] for case in yaml.safe_load(test_set.read_text())["queries"]]
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = build_engine(DatabaseSettings(url=url), application_name="bench-relevance-cost")
    sessions = async_sessionmaker(engine)
    sent = 0

    def count_statement(*_: Any) -> None:
        nonlocal sent
        sent += 1

    async def search(n: int) -> None:
        async with sessions() as session:
            filters = DirectoryFilters(q=queries[n % len(queries)])
            await ExpertDirectory(session).search(filters, None, 20)

    try:
        for n in range(len(queries) * 2):
            await search(n)
        event.listen(engine.sync_engine, "before_cursor_execute", count_statement)
        started, started_cpu = time.perf_counter(), time.process_time()
        for n in range(count):
            await search(n)
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    finally:
        await engine.dispose()
    return {
        "cpu_us": cpu / count * 1e6,
        "wall_us": wall / count * 1e6,
        "statements": sent / count,
        **await _cached(queries, seconds),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--baseline-src", help="a src/ directory of another version")
    parser.add_argument("--searches", type=int, default=640, help="measured per round and tree")
    parser.add_argument("--seconds", type=float, default=8, help="measured, cached route")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.searches, args.seconds))))
        return
    with demo_database(args.server, "", "ccrelevance") as (env, _):
        print(f"load average at start: {load_average()}", flush=True)
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if args.baseline_src:
            trees.insert(0, ("baseline", str(Path(args.baseline_src).resolve())))
        results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
        for round_number in range(1, args.rounds + 1):
            for label, src in trees:
                result = json.loads(
                    child_in_tree(
                        "bench.relevance_cost",
                        src,
                        env,
                        ["--searches", str(args.searches), "--seconds", str(args.seconds)],
                    )
                )
                results[label].append(result)
                shown = ", ".join(f"{COLUMNS[k]} {v:.1f}" for k, v in result.items())
                print(f"round {round_number}, {label}: per search: {shown}", flush=True)
        print()
        print("| tree | " + " | ".join(COLUMNS.values()) + " |")
        print("|---|" + "---:|" * len(COLUMNS))
        for label, rounds in results.items():
            medians = [statistics.median(r[key] for r in rounds) for key in COLUMNS]
            print(f"| {label} | " + " | ".join(f"{m:.1f}" for m in medians) + " |")
        print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
