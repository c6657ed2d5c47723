"""Zipf-distributed reads of the public expert directory on the demo data, with the cache on
and off, side by side in one run: throughput, latency, and the hit rate of the measured
requests.

    .venv/bin/python bench/cache_directory.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/0] [--duration 20] [--connections 32] [--zipf 1.0]

Creates its own database on the server (migrated, filled by `chainconsult demo-data`) and
drops it afterwards. The request mix: every expert's detail page plus the first page of the
list for each sort, each skill and each chain, ranked in a fixed random order and drawn with
probability proportional to 1/rank^s (s = --zipf). Each mode runs one API process (uvicorn,
one worker) and wrk (one thread) on this machine; a warm-up run precedes the measured one.
Needs wrk on PATH."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from chainconsult.infra.db.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-that-is-long-enough-for-signing"
SEQUENCE_LENGTH = 50_000
_UVICORN = ("bench.cache_app:create_app", "--factory", "--host", "127.0.0.1", "--no-access-log")
_MS_PER = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_database(server: str) -> tuple[str, str]:
    name = f"cc_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = server.rpartition("/")
    return name, f"{base}/{name}"


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def request_universe(database_url: str) -> list[str]:
    from chainconsult.experts.schemas import ExpertSort
    from chainconsult.experts.vocabulary import Chain, Skill

    with psycopg.connect(database_url) as conn:
        ids = [str(row[0]) for row in conn.execute("SELECT id FROM expert_profiles ORDER BY id")]
    paths = [f"/api/v2/experts/{expert_id}" for expert_id in ids]
    for sort in ExpertSort:
        paths.append(f"/api/v2/experts?sort={sort.value}")
        paths += [f"/api/v2/experts?sort={sort.value}&skill={s.value}" for s in Skill]
        paths += [f"/api/v2/experts?sort={sort.value}&chain={c.value}" for c in Chain]
    return paths


def zipf_sequence(paths: list[str], s: float, length: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    ranked = paths[:]
    rng.shuffle(ranked)
    weights = [1 / (rank**s) for rank in range(1, len(ranked) + 1)]
    return rng.choices(ranked, weights=weights, k=length)


def wrk_script(sequence: list[str], directory: Path) -> Path:
    script = directory / "zipf.lua"
    body = ",\n".join(json.dumps(path) for path in sequence)
    script.write_text(
        f"local paths = {{\n{body}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return script


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *_UVICORN, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start; see {log}")


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = {"raw": out}
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match:
            result[f"p{pct}_ms"] = float(match.group(1)) * _MS_PER[match.group(2)]
    return result


def directory_counts(url: str) -> tuple[int, int]:
    report = httpx.get(f"{url}/bench/cache-stats", timeout=5).json()
    hits = misses = 0
    for name, stats in report["caches"].items():
        if name.startswith("experts."):
            hits += stats["hits"]
            misses += stats["misses"]
    return hits, misses


def measure(
    mode: str, base_env: dict[str, str], script: Path, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    env = {**base_env, "CACHE_ENABLED": "true" if mode == "on" else "false"}
    process, url = start_server(env, work / f"server-{mode}.log")
    try:
        run_wrk(url, script, args.warmup, args.connections)
        before = directory_counts(url)
        result = run_wrk(url, script, args.duration, args.connections)
        after = directory_counts(url)
    finally:
        process.terminate()
        process.wait(20)
    hits, misses = after[0] - before[0], after[1] - before[1]
    result["hit_rate"] = hits / (hits + misses) if hits + misses else None
    result["lookups"] = hits + misses
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--duration", type=int, default=20, help="measured seconds per mode")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured seconds per mode")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent s")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk)")

    name, database_url = create_database(args.server)
    work = Path(tempfile.mkdtemp(prefix="ccbench"))
    try:
        migrate(database_url.replace("postgresql://", "postgresql+psycopg://", 1), echo=print)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis,
            "REDIS_KEY_PREFIX": f"ccbench-{uuid.uuid4().hex[:8]}",
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
        paths = request_universe(database_url)
        sequence = zipf_sequence(paths, args.zipf, SEQUENCE_LENGTH)
        script = wrk_script(sequence, work)
        top = len(set(sequence[:1000]))
        print(
            f"{len(paths)} distinct requests; zipf s={args.zipf}; {top} distinct in the first 1000"
        )
        results = {mode: measure(mode, env, script, args, work) for mode in ("off", "on")}
    finally:
        drop_database(args.server, name)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("| cache | requests/s | p50 ms | p90 ms | p99 ms | non-2xx | directory hit rate |")
    print("|---|---|---|---|---|---|---|")
    for mode, result in results.items():
        rate = "n/a" if result["hit_rate"] is None else f"{result['hit_rate'] * 100:.2f} %"
        print(
            f"| {mode} | {result['rps']:.0f} | {result.get('p50_ms', 0):.2f} | "
            f"{result.get('p90_ms', 0):.2f} | {result.get('p99_ms', 0):.2f} | "
            f"{result['non_2xx']} | {rate} |"
        )
    speedup = results["on"]["rps"] / results["off"]["rps"]
    print(f"\nthroughput with the cache: {speedup:.1f}x the throughput without")


if __name__ == "__main__":
    main()
