"""How long `chainconsult demo-data` takes: a first load into a freshly migrated database and
an idempotent second run, side by side, repeated.

    .venv/bin/python bench/demo_data.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--runs 3]

Each run creates its own database on the server and drops it afterwards."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


def cli(*args: str, database_url: str) -> float:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "b" * 40, "REDIS_URL": ""}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "chainconsult", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    first: list[float] = []
    again: list[float] = []
    for run in range(args.runs):
        name = f"bench_demo_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
        try:
            cli("migrate", database_url=url)
            first.append(cli("demo-data", database_url=url))
            again.append(cli("demo-data", database_url=url))
        finally:
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        print(f"run {run + 1}: first load {first[-1]:.2f} s, second run {again[-1]:.2f} s")

    print()
    print("| step | median s | max s |")
    print("|---|---|---|")
    print(
        f"| first load (300 accounts, 500 projects, ...) | {statistics.median(first):.2f} | "
        f"{max(first):.2f} |"
    )
    print(f"| second run (adds nothing) | {statistics.median(again):.2f} | {max(again):.2f} |")


if __name__ == "__main__":
    main()
