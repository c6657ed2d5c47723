"""Job throughput and defer cost, side by side in one run.

1. No-op jobs/s for one worker process at concurrency 1, 10 and 50: N jobs are queued
   (one batch insert), then a worker runs until the queue is empty; the clock runs from
   the worker's start to its end.
2. The cost of ``defer`` inside a request's transaction: a transaction that inserts one row
   (what a small write request does), with and without deferring a job in it, and with a
   queueing lock (which adds a savepoint).

Usage (a PostgreSQL server where a scratch database may be created and dropped):
    .venv/bin/python bench/jobs_throughput.py --server postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid

import psycopg
from procrastinate import JobContext
from psycopg import sql
from sqlalchemy import text

from chainconsult.config import load_settings
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from chainconsult.infra.db.migrate import migrate
from chainconsult.infra.jobs import DeferOptions, JobResources, Queue, defer, task
from chainconsult.infra.jobs import worker as job_worker
from chainconsult.infra.jobs.worker import run_worker
from chainconsult.infra.monitoring.logging import configure_logging


@task(name="bench.noop", queue=Queue.default, retry=None)
async def noop(context: JobContext, *, n: int) -> None:
    return None


def queue_noops(url: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT procrastinate_defer_jobs_v1(array_agg(ROW('default', 'bench.noop', 0, NULL,"
            " NULL, jsonb_build_object('n', n), NULL)::procrastinate_job_to_defer_v1))"
            " FROM generate_series(1, %s) AS n",
            (count,),
        )
        conn.execute("VACUUM ANALYZE procrastinate_jobs")


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,"
            " procrastinate_workers, job_failures, accounts CASCADE"
        )


async def throughput(resources: JobResources, url: str, concurrency: int, count: int) -> float:
    reset(url)
    queue_noops(url, count)
    started = time.perf_counter()
    await run_worker(resources, concurrency=concurrency, wait=False, install_signal_handlers=False)
    elapsed = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        done = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        ).fetchone()
    if done is None or done[0] != count:
        raise RuntimeError(f"only {done} of {count} jobs succeeded")
    return count / elapsed


async def defer_cost(resources: JobResources, url: str, rounds: int) -> dict[str, list[float]]:
    reset(url)
    timings: dict[str, list[float]] = {"insert only": [], "insert + defer": [], "+ lock": []}
    maker = resources.sessionmaker
    insert = text(
        "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active)"
        " VALUES (:id, :email, 'x', 'Bench', 'client', 'free', true)"
    )
    for round_ in range(rounds):
        for variant in timings:
            account = uuid.uuid4()
            started = time.perf_counter()
            async with maker() as session, session.begin():
                await session.execute(insert, {"id": account, "email": f"{account}@b.example"})
                if variant == "insert + defer":
                    await defer(session, noop, n=round_)
                elif variant == "+ lock":
                    await defer(session, noop, DeferOptions(queueing_lock=str(account)), n=round_)
            timings[variant].append((time.perf_counter() - started) * 1000)
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL"), required=False)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument(
        "--compare-tuning",
        action="store_true",
        help="also run the worker with procrastinate's defaults for the two tunings "
        "(synchronous commit, a ping on every pool checkout), alternating run by run",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="INFO adds procrastinate's two log lines per job (written to /dev/null here)",
    )
    args = parser.parse_args()
    # Pay for formatting every line, without flooding the terminal with them.
    quiet = open(os.devnull, "w") if args.log_level != "WARNING" else None  # noqa: SIM115
    configure_logging(args.log_level, stream=quiet)
    if not args.server:
        sys.exit("--server (or TEST_DATABASE_URL) is required")
    server = args.server.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"cc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    from sqlalchemy.engine import make_url

    sa_url = make_url(server.replace("postgresql://", "postgresql+psycopg://", 1)).set(
        database=name
    )
    rendered = sa_url.render_as_string(hide_password=False)
    try:
        migrate(rendered, echo=lambda _line: None)
        os.environ.update(
            {
                "DATABASE_URL": rendered,
                "CHAINCONSULT_DATA_DIR": tempfile.mkdtemp(),
                "LOG_LEVEL": "WARNING",
            }
        )
        settings = load_settings()
        engine = build_engine(settings.database)
        resources = JobResources(settings=settings, sessionmaker=build_sessionmaker(engine))
        print(
            f"no-op jobs, one worker process, {args.jobs} jobs per run, median of 3 runs,"
            f" LOG_LEVEL={args.log_level}, load average {os.getloadavg()[0]:.1f}"
        )
        variants = {"tuned": ("off", job_worker.CHECK_AFTER_IDLE_SECONDS)}
        if args.compare_tuning:
            variants["library defaults"] = ("on", 0.0)
        for concurrency in args.concurrency:
            rates: dict[str, list[float]] = {variant: [] for variant in variants}
            for _ in range(3):
                # Alternating, so both variants see the same background load.
                for variant, (synchronous_commit, check_after) in variants.items():
                    job_worker.SYNCHRONOUS_COMMIT = synchronous_commit
                    job_worker.CHECK_AFTER_IDLE_SECONDS = check_after
                    rates[variant].append(await throughput(resources, url, concurrency, args.jobs))
            for variant, values in rates.items():
                print(
                    f"  concurrency {concurrency:>3} {variant:<17}"
                    f" {statistics.median(values):7.0f} jobs/s"
                    f"  (runs: {', '.join(f'{rate:.0f}' for rate in values)})"
                )
        job_worker.SYNCHRONOUS_COMMIT, job_worker.CHECK_AFTER_IDLE_SECONDS = variants["tuned"]
        timings = await defer_cost(resources, url, args.rounds)
        print(f"request transaction (insert one row, commit), {args.rounds} rounds, ms")
        for variant, values in timings.items():
            values.sort()
            p50 = statistics.median(values)
            p99 = values[int(len(values) * 0.99) - 1]
            print(f"  {variant:<15} p50 {p50:6.3f}  p99 {p99:6.3f}")
        await engine.dispose()
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    asyncio.run(main())
