"""What the edge stack (client IP and blocklist, security headers, CORS, rate limit) costs on
a cheap public GET, measured with wrk against real uvicorn processes, side by side:

- ``bare``: the app with only the foundation's middleware (request id, body guard, crash
  barrier);
- ``edge-memory``: the full stack, rate limits in process memory (no REDIS_URL);
- ``edge-redis``: the full stack, rate limits on Redis (two round trips per request).

Two measures, both side by side in one run:

- ``--mode wrk``: requests per second and latency through the network with wrk (wall clock:
  honest end to end, but it moves with whatever else the machine is running);
- ``--mode asgi``: CPU time per request with the app called directly as an ASGI callable,
  no server and no socket (``time.process_time``: what this process spends, which other load
  on the machine disturbs far less).

Run from the repository root:

    .venv/bin/python -m bench.edge_stack --mode asgi --requests 5000 --rounds 5
    .venv/bin/python -m bench.edge_stack --mode wrk --duration 10 --connections 16 --rounds 3

Needs `wrk` and, for the Redis variant, BENCH_REDIS_URL (default redis://127.0.0.1:6379/0).
The database is never queried by /livez, but ``--mode asgi`` runs the app's lifespan (the rate
limiter is one of the resources it opens), whose live-update listener connects to DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from chainconsult.app import create_app
from chainconsult.infra.ratelimit import RateLimitMiddleware
from chainconsult.infra.security.client_ip import ClientIPMiddleware
from chainconsult.infra.security.cors import ExactOriginCORSMiddleware
from chainconsult.infra.security.headers import SecurityHeadersMiddleware

EDGE = (
    ClientIPMiddleware,
    SecurityHeadersMiddleware,
    ExactOriginCORSMiddleware,
    RateLimitMiddleware,
)
ROOT = Path(__file__).resolve().parents[1]


def full_app() -> FastAPI:
    return create_app()


def bare_app() -> FastAPI:
    """The same app with the edge middleware taken out (the stack is built on first use)."""
    app = create_app()
    app.user_middleware = [m for m in app.user_middleware if m.cls not in EDGE]
    return app


@dataclass
class Result:
    variant: str
    round: int
    requests_per_second: float
    latency_avg_ms: float
    latency_p99_ms: float
    non_2xx: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _serve(factory: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"bench.edge_stack:{factory}",
            "--factory",
            "--port",
            str(port),
            "--no-access-log",
            "--no-server-header",
            "--log-level",
            "warning",
            "--http",
            "httptools",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{factory} did not start")


def _wrk(port: int, duration: int, connections: int) -> tuple[float, float, float, int]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            f"http://127.0.0.1:{port}/livez",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    avg = _ms(re.search(r"Latency\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, avg, p99, int(non_2xx.group(1)) if non_2xx else 0


_SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/livez",
    "raw_path": b"/livez",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def _asgi_cost(app: FastAPI, requests: int) -> tuple[float, float, int]:
    """(CPU µs, wall µs) per request over ``requests`` calls, and how many were not 200."""
    failures = 0

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal failures
        if message["type"] == "http.response.start" and message["status"] != 200:
            failures += 1

    async def run(count: int) -> None:
        for _ in range(count):
            await app({**_SCOPE, "state": {}}, receive, send)  # type: ignore[arg-type]

    await run(500)  # warm-up: imports, caches, first Redis connection
    cpu, wall = time.process_time(), time.perf_counter()
    await run(requests)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / requests * 1e6, wall / requests * 1e6, failures


def run_asgi(
    variants: list[tuple[str, str, dict[str, str]]],
    common: dict[str, str],
    args: argparse.Namespace,
) -> None:
    import asyncio

    factories = {"bare_app": bare_app, "full_app": full_app}
    costs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in variants}
    failures = 0
    for round_number in range(1, args.rounds + 1):
        for name, factory, extra in variants:
            os.environ.update(common)
            os.environ.pop("REDIS_URL", None)
            os.environ.update(extra)
            app = factories[factory]()

            async def measure(app: FastAPI = app) -> tuple[float, float, int]:
                # The lifespan opens what the middleware uses (the rate limiter: Resources).
                async with app.router.lifespan_context(app):
                    return await _asgi_cost(app, args.requests)

            cpu, wall, failed = asyncio.run(measure())
            failures += failed
            costs[name].append((cpu, wall))
            print(
                f"{name:12} round {round_number}: {cpu:7.1f} µs CPU  {wall:7.1f} µs wall",
                flush=True,
            )
    print()
    print(
        f"| variant | CPU µs per request (median of {args.rounds}) | wall µs | edge cost, CPU µs |"
    )
    print("|---|---|---|---|")
    bare = sorted(c for c, _ in costs["bare"])[len(costs["bare"]) // 2]
    for name, _, _ in variants:
        cpu = sorted(c for c, _ in costs[name])[len(costs[name]) // 2]
        wall = sorted(w for _, w in costs[name])[len(costs[name]) // 2]
        print(f"| {name} | {cpu:.1f} | {wall:.1f} | {cpu - bare:+.1f} |")
    print(f"\nnon-200 answers: {failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["wrk", "asgi"], default="wrk")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=5000, help="requests per asgi round")
    parser.add_argument("--rounds", type=int, default=3, help="each variant this many times")
    args = parser.parse_args()
    common = {
        "CHAINCONSULT_ENV": "production",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hmac",
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        "LOG_LEVEL": "WARNING",
        # High enough that no request of the run is refused: the cost measured is counting.
        "RATE_LIMIT_ANONYMOUS": "100000000/minute",
        "ALLOWED_ORIGINS": "https://app.example.com",
        "REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
    }
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    variants = [
        ("bare", "bare_app", {}),
        ("edge-memory", "full_app", {}),
        ("edge-redis", "full_app", {"REDIS_URL": redis_url}),
    ]
    if args.mode == "asgi":
        run_asgi(variants, common, args)
        return
    results: list[Result] = []
    for round_number in range(1, args.rounds + 1):
        for name, factory, extra in variants:
            env = {**common, **extra}
            if "REDIS_URL" not in extra:
                env["REDIS_URL"] = ""
            process, port = _serve(factory, env)
            try:
                _wrk(port, 2, args.connections)  # warm-up
                rps, avg, p99, non_2xx = _wrk(port, args.duration, args.connections)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(15)
            results.append(Result(name, round_number, rps, avg, p99, non_2xx))
            print(
                f"{name:12} round {round_number}: {rps:9.0f} req/s  avg {avg:6.2f} ms  "
                f"p99 {p99:6.2f} ms  non-2xx {non_2xx}",
                flush=True,
            )
    print()
    print("| variant | req/s (median of rounds) | avg latency ms | p99 latency ms | non-2xx |")
    print("|---|---|---|---|---|")
    for name, _, _ in variants:
        mine = sorted(
            (r for r in results if r.variant == name), key=lambda r: r.requests_per_second
        )
        middle = mine[len(mine) // 2]
        print(
            f"| {name} | {middle.requests_per_second:.0f} | {middle.latency_avg_ms:.2f} | "
            f"{middle.latency_p99_ms:.2f} | {sum(r.non_2xx for r in mine)} |"
        )


if __name__ == "__main__":
    main()
