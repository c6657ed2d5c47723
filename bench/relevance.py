"""Relevance search latency on the demo data (issue 23, done-when 4: p99 under 20 ms at 16
connections), for the queries of tests/experts/relevance_queries.yaml (misspelt ones
included), sent in turn.

    .venv/bin/python bench/relevance.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--duration 20] [--warmup 5] [--connections 16] [--cache off|on|both] [--no-http]
        [--redis redis://127.0.0.1:6379/0]

Three measurements. "sql": the statements ExpertDirectory.search sends for each query (what
the route runs on a cache miss: the ranked page with the query's lexemes and, for a
misspelt query, the correction), captured once, then replayed on 16 connections at once,
each search in one transaction: the relevance query's own latency. "service": 16 tasks in one
process call ExpertDirectory.search in a loop (adds SQLAlchemy and one event loop). "http": wrk
sends `GET /api/v2/experts?q=...` to one API process (uvicorn, one worker), with the cache off
(every request runs the search) and/or on (repeats answered from memory: without
``--redis``, as by default, each process keeps an entry one second, so every query is
searched again each second; with Redis, for the cache's TTL). Creates its own
database on the server (migrated, filled by `chainconsult demo-data`) and drops it
afterwards. The http part needs wrk on PATH."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import yaml
from cache_directory import (
    ROOT,
    SECRET,
    create_database,
    drop_database,
    run_wrk,
    start_server,
    wrk_script,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker

from chainconsult.config import DatabaseSettings
from chainconsult.experts.schemas import DirectoryFilters
from chainconsult.experts.service import ExpertDirectory
from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.db.migrate import migrate

TEST_SET = ROOT / "tests" / "experts" / "relevance_queries.yaml"
TARGET_P99_MS = 20.0


def test_set_queries() -> list[str]:
    return [case["query"] for case in yaml.safe_load(TEST_SET.read_text())["queries"]]


async def service_latencies(
    database_url: str, queries: list[str], args: argparse.Namespace
) -> list[float]:
    """Milliseconds per ExpertDirectory.search, ``args.connections`` tasks at once."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    settings = DatabaseSettings(url=url, max_connections=args.connections)
    engine = build_engine(settings, application_name="bench-relevance")
    sessions = async_sessionmaker(engine)
    samples: list[float] = []

    async def worker(offset: int, until: float, record: bool) -> None:
        n = offset
        while time.perf_counter() < until:
            started = time.perf_counter()
            async with sessions() as session:
                filters = DirectoryFilters(q=queries[n % len(queries)])
                await ExpertDirectory(session).search(filters, None, 20)
            if record:
                samples.append((time.perf_counter() - started) * 1000)
            n += 1

    try:
        for seconds, record in ((args.warmup, False), (args.duration, True)):
            until = time.perf_counter() + seconds
            await asyncio.gather(*(worker(i, until, record) for i in range(args.connections)))
    finally:
        await engine.dispose()
    return sorted(samples)


def measure(env: dict[str, str], script: Path, args: argparse.Namespace, log: Path) -> Any:
    process, url = start_server(env, log)
    try:
        run_wrk(url, script, args.warmup, args.connections)
        return run_wrk(url, script, args.duration, args.connections)
    finally:
        process.terminate()
        process.wait(20)


async def statements_of(database_url: str, queries: list[str]) -> list[list[tuple[str, Any]]]:
    """The statements (with parameters) ExpertDirectory.search sends for each query."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = build_engine(DatabaseSettings(url=url), application_name="bench-relevance")
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    per_query = []
    try:
        for q in queries:
            async with async_sessionmaker(engine)() as session:
                await ExpertDirectory(session).search(DirectoryFilters(q=q), None, 20)
            per_query.append(sent[:])
            sent.clear()
    finally:
        await engine.dispose()
    return per_query


def sql_latencies(
    database_url: str, searches: list[list[tuple[str, Any]]], args: argparse.Namespace
) -> list[float]:
    """Milliseconds per search replayed as SQL (each search's statements in one transaction),
    on ``args.connections`` connections at once: the database's share without Python's."""
    samples: list[float] = []

    def worker(offset: int, seconds: float, record: bool) -> None:
        with psycopg.connect(database_url) as conn:
            n = offset
            until = time.perf_counter() + seconds
            while time.perf_counter() < until:
                started = time.perf_counter()
                with conn.transaction():
                    for statement, parameters in searches[n % len(searches)]:
                        cursor = conn.execute(statement, parameters)
                        if cursor.description is not None:
                            cursor.fetchall()
                if record:
                    samples.append((time.perf_counter() - started) * 1000)
                n += 1

    for seconds, record in ((args.warmup, False), (args.duration, True)):
        with ThreadPoolExecutor(args.connections) as pool:
            for _ in pool.map(
                lambda i, s=seconds, r=record: worker(i, s, r), range(args.connections)
            ):
                pass
    return sorted(samples)


def percentile(samples: list[float], pct: float) -> float:
    return samples[min(len(samples) - 1, int(len(samples) * pct / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=20, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cache", choices=("off", "on", "both"), default="both")
    parser.add_argument("--no-http", action="store_true", help="only the in-process run")
    parser.add_argument("--redis", default="", help="REDIS_URL of the API process (none)")
    args = parser.parse_args()
    if not args.no_http and shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or pass --no-http")

    name, database_url = create_database(args.server)
    work = Path(tempfile.mkdtemp(prefix="ccbench"))
    modes = () if args.no_http else ("off", "on") if args.cache == "both" else (args.cache,)
    queries = test_set_queries()
    rows: dict[str, tuple[float, float, float, float, int]] = {}
    try:
        migrate(database_url.replace("postgresql://", "postgresql+psycopg://", 1), echo=print)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis,
            "REDIS_KEY_PREFIX": f"ccrelevance-{name}",
            "CHAINCONSULT_ENV": "production",
            "SECRET_KEY": SECRET,
            "CHAINCONSULT_DATA_DIR": str(work / "var"),
            "LOG_LEVEL": "WARNING",
            # The load generator is one client: keep rate limits out of the measurement.
            "TRUSTED_IPS": "127.0.0.1/32",
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run(
            [sys.executable, "-m", "chainconsult", "demo-data"], env=env, check=True, cwd=ROOT
        )
        print(f"{len(queries)} queries, {args.connections} connections, {args.duration} s")
        searches = asyncio.run(statements_of(database_url, queries))
        sql_samples = sql_latencies(database_url, searches, args)
        service_samples = asyncio.run(service_latencies(database_url, queries, args))
        for label, samples in (
            ("sql (the search's statements)", sql_samples),
            ("service (no cache, one process)", service_samples),
        ):
            rows[label] = (
                len(samples) / args.duration,
                percentile(samples, 50),
                percentile(samples, 90),
                percentile(samples, 99),
                0,
            )
        script = wrk_script([f"/api/v2/experts?{urlencode({'q': q})}" for q in queries], work)
        for mode in modes:
            mode_env = {**env, "CACHE_ENABLED": "true" if mode == "on" else "false"}
            result = measure(mode_env, script, args, work / f"server-{mode}.log")
            rows[f"http, cache {mode}"] = (
                result["rps"],
                result.get("p50_ms", 0.0),
                result.get("p90_ms", 0.0),
                result.get("p99_ms", 0.0),
                result["non_2xx"],
            )
    finally:
        drop_database(args.server, name)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("| run | requests/s | p50 ms | p90 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|---|")
    for label, (rps, p50, p90, p99, non_2xx) in rows.items():
        print(f"| {label} | {rps:.0f} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {non_2xx} |")
    for label, (*_, p99, _) in rows.items():
        verdict = "met" if p99 < TARGET_P99_MS else "NOT met"
        print(f"p99 target {TARGET_P99_MS:.0f} ms, {label}: {verdict} ({p99:.2f} ms)")


if __name__ == "__main__":
    main()
