"""Authenticated reads (`GET /api/v2/auth/me` with a bearer token) with the cache on and off,
side by side in one run: every such request resolves its login and account, which the cache
serves; `/me` itself is served from the cached account too.

    .venv/bin/python bench/cache_auth.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/0] [--users 200] [--duration 20] [--connections 32]

Creates its own database (migrated, with --users accounts logged in once each) and drops it
afterwards; tokens are drawn Zipf-distributed (s = --zipf) as in cache_directory.py. One API
process (uvicorn, one worker) and wrk (one thread). Needs wrk on PATH."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg

# The sibling script holds the shared steps; this one runs as a script from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_directory import (
    ROOT,
    SECRET,
    SEQUENCE_LENGTH,
    create_database,
    drop_database,
    start_server,
    zipf_sequence,
)
from cache_directory import run_wrk as _run_wrk

from chainconsult.infra.db.migrate import migrate
from chainconsult.infra.security.tokens import new_login_token, token_digest


def seed_logins(database_url: str, users: int) -> list[str]:
    tokens = []
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with psycopg.connect(database_url) as conn:
        for index in range(users):
            account_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, "
                "is_active) VALUES (%s, %s, 'x', %s, 'client', 'free', true)",
                (account_id, f"bench{index}@example.com", f"Bench {index}"),
            )
            token = new_login_token()
            conn.execute(
                "INSERT INTO account_sessions (id, account_id, token_hash, expires_at) "
                "VALUES (%s, %s, %s, %s)",
                (uuid.uuid4(), account_id, token_digest(token), expires),
            )
            tokens.append(token)
    return tokens


def wrk_script(tokens: list[str], directory: Path) -> Path:
    script = directory / "auth.lua"
    body = ",\n".join(json.dumps(token) for token in tokens)
    script.write_text(
        f"local tokens = {{\n{body}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #tokens + 1\n"
        '  return wrk.format("GET", "/api/v2/auth/me", '
        '{["Authorization"] = "Bearer " .. tokens[i]})\n'
        "end\n"
    )
    return script


def auth_counts(url: str) -> tuple[int, int]:
    import httpx

    report = httpx.get(f"{url}/bench/cache-stats", timeout=5).json()
    hits = misses = 0
    for name, stats in report["caches"].items():
        if name.startswith("accounts."):
            hits += stats["hits"]
            misses += stats["misses"]
    return hits, misses


def measure(
    mode: str, env: dict[str, str], script: Path, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    process, url = start_server(
        {**env, "CACHE_ENABLED": "true" if mode == "on" else "false"}, work / f"{mode}.log"
    )
    try:
        _run_wrk(url, script, args.warmup, args.connections)
        before = auth_counts(url)
        result = _run_wrk(url, script, args.duration, args.connections)
        after = auth_counts(url)
    finally:
        process.terminate()
        process.wait(20)
    hits, misses = after[0] - before[0], after[1] - before[1]
    result["hit_rate"] = hits / (hits + misses) if hits + misses else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--zipf", type=float, default=1.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk)")

    name, database_url = create_database(args.server)
    work = Path(tempfile.mkdtemp(prefix="ccbench"))
    try:
        migrate(database_url.replace("postgresql://", "postgresql+psycopg://", 1), echo=print)
        tokens = seed_logins(database_url, args.users)
        script = wrk_script(zipf_sequence(tokens, args.zipf, SEQUENCE_LENGTH), work)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis,
            "REDIS_KEY_PREFIX": f"ccbench-{uuid.uuid4().hex[:8]}",
            "CHAINCONSULT_ENV": "production",
            "SECRET_KEY": SECRET,
            "CHAINCONSULT_DATA_DIR": str(work / "var"),
            "LOG_LEVEL": "WARNING",
            "TRUSTED_IPS": "127.0.0.1/32",
            "PYTHONPATH": str(ROOT),
        }
        results = {mode: measure(mode, env, script, args, work) for mode in ("off", "on")}
    finally:
        drop_database(args.server, name)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("| cache | requests/s | p50 ms | p90 ms | p99 ms | non-2xx | login+account hit rate |")
    print("|---|---|---|---|---|---|---|")
    for mode, result in results.items():
        rate = "n/a" if result["hit_rate"] is None else f"{result['hit_rate'] * 100:.2f} %"
        print(
            f"| {mode} | {result['rps']:.0f} | {result.get('p50_ms', 0):.2f} | "
            f"{result.get('p90_ms', 0):.2f} | {result.get('p99_ms', 0):.2f} | "
            f"{result['non_2xx']} | {rate} |"
        )
    print(f"\nthroughput with the cache: {results['on']['rps'] / results['off']['rps']:.1f}x")


if __name__ == "__main__":
    main()
