"""Health endpoint latency under load: `chainconsult serve --workers N` on loopback, driven by
wrk at 256 connections, side by side in one run:

- /livez            no dependency work at all (the floor of the stack)
- /api/health       brief health, probes cached for HEALTH_CACHE_SECONDS (default 1.5 s)
- /api/health       with HEALTH_CACHE_SECONDS=0: every request probes PostgreSQL and Redis
- /api/v2/health    the full draft-inadarei report, cached

Usage:
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/health_load.py [--duration 20] [--connections 256] [--workers 2]

It creates (and drops) its own database on that server and uses its own Redis key prefix."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from chainconsult.infra.db.migrate import migrate

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    errors: str


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(f"unreadable wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(name: str, output: str) -> Result:
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:(.*)$", output, re.MULTILINE)
    if rps is None or set(percentiles) != {"50", "75", "90", "99"}:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    return Result(
        name=name,
        requests_per_s=float(rps.group(1)),
        p50_ms=_ms(percentiles["50"]),
        p90_ms=_ms(percentiles["90"]),
        p99_ms=_ms(percentiles["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(1).strip() if errors else "none",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chainconsult",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{self.base}/readyz", timeout=1)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not become ready: {last}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_wrk(url: str, *, duration: int, connections: int, threads: int) -> str:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    server_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL")
    name = f"cc_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(server_url).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    data_dir = tempfile.mkdtemp(prefix="ccbench")
    results: list[Result] = []
    load_before = os.getloadavg()[0]
    try:
        migrate(
            url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
            echo=lambda _: None,
        )
        base_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        base_env.update(
            DATABASE_URL=database_url,
            CHAINCONSULT_ENV="production",
            SECRET_KEY=secrets.token_urlsafe(48),
            LOG_LEVEL="WARNING",
            REDIS_KEY_PREFIX=f"ccbench-{secrets.token_hex(4)}",
            CHAINCONSULT_DATA_DIR=data_dir,
        )
        if redis_url:
            base_env["REDIS_URL"] = redis_url
        else:
            base_env.pop("REDIS_URL", None)
        scenarios = [
            ("GET /livez", "/livez", "1.5"),
            ("GET /api/health (cached 1.5 s)", "/api/health", "1.5"),
            ("GET /api/health (no cache: probe per request)", "/api/health", "0"),
            ("GET /api/v2/health (cached 1.5 s)", "/api/v2/health", "1.5"),
        ]
        for label, path, cache in scenarios:
            server = Server({**base_env, "HEALTH_CACHE_SECONDS": cache}, args.workers)
            try:
                # Warm-up: connections, pools and the first probes.
                run_wrk(
                    server.base + path,
                    duration=3,
                    connections=args.connections,
                    threads=args.threads,
                )
                output = run_wrk(
                    server.base + path,
                    duration=args.duration,
                    connections=args.connections,
                    threads=args.threads,
                )
                results.append(parse_wrk(label, output))
            finally:
                server.stop()
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        shutil.rmtree(data_dir, ignore_errors=True)

    print(
        f"\n{args.workers} server workers, wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s, Redis {'on' if redis_url else 'off'}, "
        f"{os.cpu_count()} CPUs shared by server and wrk; 1-minute load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (anything above the CPU "
        "count means other processes competed for the CPUs)\n"
    )
    print("| scenario | requests/s | p50 ms | p90 ms | p99 ms | non-2xx | socket errors |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r.name} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.non_2xx} | {r.errors} |"
        )


if __name__ == "__main__":
    main()
