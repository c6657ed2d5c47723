"""What the API versioning layer costs a v2 GET answered from memory (the shape of a cache
hit), side by side: the same application with and without ``ApiVersionMiddleware``, each in its
own uvicorn process, measured by wrk in alternating rounds so drift hits both alike.

    .venv/bin/python bench/versioning.py [--rounds 3] [--duration 10] [--connections 32]
                                         [--in-process N --in-process-rounds R]

Besides requests per second, it reports the server's CPU time per request (from the process's
CPU counters): on a shared machine other work stretches wall time, not the CPU one request
costs, so that is the number the comparison rests on. Also measured, for information: the
same GET on the unversioned path (header negotiation and a path rewrite) and through v1 (a
declared route whose response is converted down).
Needs wrk on PATH. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAYLOAD: dict[str, Any] = {
    "id": "5f0c2a8e-3a43-4c1e-9a53-0b7d4c8f2e11",
    "display_name": "Ada Lovelace",
    "headline": "Smart contract auditor",
    "rate": {"amount": "150.00", "currency": "USD"},
    "skills": ["solidity", "rust", "audits"],
    "chains": ["ethereum", "solana"],
    "rating": 4.9,
    "reviews": 37,
}


def build_app(with_layer: bool) -> Any:
    """The real application (all middleware), plus one GET answered from memory."""
    from starlette.middleware import Middleware

    from chainconsult.app import create_app
    from chainconsult.config import load_settings
    from chainconsult.infra.versioning import (
        ApiVersionMiddleware,
        ObjectShape,
        RenamedField,
        V1Route,
        V1Surface,
        WholeMoney,
    )

    app = create_app(load_settings())

    @app.get("/api/v2/bench/expert")
    async def cached_expert() -> dict[str, Any]:
        return PAYLOAD

    # The v1 form of the benchmark route, declared as a domain would.
    route = V1Route(
        "GET",
        "/bench/expert",
        response=ObjectShape(
            (RenamedField(v1="name", v2="display_name"), WholeMoney(v1="hourly_rate", v2="rate"))
        ),
    )
    kept = []
    for middleware in app.user_middleware:
        if middleware.cls is not ApiVersionMiddleware:
            kept.append(middleware)
        elif with_layer:
            surface: V1Surface = middleware.kwargs["surface"]
            bench_surface = V1Surface.of([*surface.routes, route], surface.passthrough)
            kept.append(
                Middleware(ApiVersionMiddleware, **{**middleware.kwargs, "surface": bench_surface})
            )
    app.user_middleware = kept
    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(with_layer: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {
        **os.environ,
        "CHAINCONSULT_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": "bench-secret-key-long-enough-for-hmac-signing-0123",
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    }
    env.pop("REDIS_URL", None)
    code = (
        f"import sys, uvicorn; sys.path.insert(0, {str(HERE)!r}); import versioning as b; "
        f"uvicorn.run(b.build_app({with_layer!r}), host='127.0.0.1', port={port}, "
        "log_level='warning', access_log=False)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not start")


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _wrk(
    url: str, args: argparse.Namespace, headers: dict[str, str], server_pid: int
) -> tuple[float, float, float]:
    """(requests per second, mean latency in ms, server CPU microseconds per request). The CPU
    time the server spent is the steadier number on a shared machine: other processes stretch
    wall time, not the work one request costs."""
    cpu_before = _cpu_seconds(server_pid)
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = _cpu_seconds(server_pid) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))  # type: ignore[union-attr]
    served = int(re.search(r"([0-9]+) requests in", output).group(1))  # type: ignore[union-attr]
    latency = re.search(r"Latency\s+([0-9.]+)(us|ms|s)", output)
    assert latency is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[latency.group(2)]
    return rps, float(latency.group(1)) * scale, cpu / served * 1e6


async def _asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    await app(scope, receive, send)


def in_process(requests: int, rounds: int) -> None:
    """Microseconds per request through the ASGI stack alone (no sockets, no HTTP parsing):
    the layer's share is larger here than behind a server, so this bounds it from above."""
    import asyncio
    import logging

    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-long-enough-for-hmac-signing-0123")
    os.environ["LOG_LEVEL"] = "WARNING"
    # Counted but out of reach: every call comes from one address, and the anonymous default
    # (120 a minute) answered 429 after the first rounds.
    os.environ["RATE_LIMIT_ANONYMOUS"] = "1000000/minute"
    apps = {"without": build_app(False), "with": build_app(True)}
    logging.getLogger("chainconsult.access").setLevel(logging.WARNING)
    cases = {
        "v2 GET, no versioning layer": ("without", "/api/v2/bench/expert", []),
        "v2 GET, with the layer": ("with", "/api/v2/bench/expert", []),
        "unversioned GET + API-Version: 2": ("with", "/api/bench/expert", [(b"api-version", b"2")]),
        "v1 GET (converted down)": ("with", "/api/v1/bench/expert", []),
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}

    async def run() -> None:
        for app in apps.values():
            # Build the middleware stack once, outside the timing.
            await _asgi_get(app, "/api/v2/bench/expert", [])
        for _ in range(rounds):
            for name, (variant, path, headers) in cases.items():
                started = time.process_time()
                for _ in range(requests):
                    await _asgi_get(apps[variant], path, headers)
                timings[name].append((time.process_time() - started) / requests * 1e6)

    asyncio.run(run())
    base = statistics.median(timings["v2 GET, no versioning layer"])
    print(f"in-process ASGI calls, {requests} requests x {rounds} alternating rounds")
    print("| case | CPU µs per request (median) | vs no layer |")
    print("|---|---|---|")
    for name, runs in timings.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:.1f} | {(median - base) / base * 100:+.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--in-process", type=int, default=0, metavar="N", help="Also time N ASGI calls per round."
    )
    parser.add_argument("--in-process-rounds", type=int, default=20)
    args = parser.parse_args()
    if args.in_process:
        in_process(args.in_process, args.in_process_rounds)
    without, port_without = _serve(with_layer=False)
    with_layer, port_with = _serve(with_layer=True)
    cases = {
        "v2 GET, no versioning layer": (port_without, "/api/v2/bench/expert", {}),
        "v2 GET, with the layer": (port_with, "/api/v2/bench/expert", {}),
        "unversioned GET + API-Version: 2": (
            port_with,
            "/api/bench/expert",
            {"API-Version": "2"},
        ),
        "v1 GET (converted down)": (port_with, "/api/v1/bench/expert", {}),
    }
    pids = {port_without: without.pid, port_with: with_layer.pid}
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    try:
        for port, path, _ in cases.values():  # warm-up
            subprocess.run(
                ["wrk", "-t1", "-c4", "-d2s", f"http://127.0.0.1:{port}{path}"],
                capture_output=True,
                check=True,
            )
        for _ in range(args.rounds):
            for name, (port, path, headers) in cases.items():
                url = f"http://127.0.0.1:{port}{path}"
                results[name].append(_wrk(url, args, headers, pids[port]))
    finally:
        for process in (without, with_layer):
            process.terminate()
            process.wait(10)
    base_cpu = statistics.median(cpu for _, _, cpu in results["v2 GET, no versioning layer"])
    base_rps = statistics.median(rps for rps, _, _ in results["v2 GET, no versioning layer"])
    print(f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds")
    print(
        "| case | server CPU µs/request (median) | vs no layer | req/s (median) "
        "| req/s per round | mean latency ms |"
    )
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        cpu = statistics.median(c for _, _, c in runs)
        rps = statistics.median(r for r, _, _ in runs)
        latency = statistics.median(ms for _, ms, _ in runs)
        rounds = ", ".join(f"{r:.0f}" for r, _, _ in runs)
        print(
            f"| {name} | {cpu:.0f} | {(cpu - base_cpu) / base_cpu * 100:+.1f} % | {rps:.0f} "
            f"({(rps - base_rps) / base_rps * 100:+.1f} %) | {rounds} | {latency:.2f} |"
        )


if __name__ == "__main__":
    main()
