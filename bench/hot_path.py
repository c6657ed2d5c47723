"""The hot read path side by side in one run, through a real server with wrk, one server
worker each: a bare FastAPI route returning the very bytes of the directory page, our cached
directory read (``GET /api/v2/experts?sort=rating``, an L1 hit through every edge policy),
and our authenticated read (``GET /api/v2/auth/me`` with a bearer token). Prints requests/s,
p50/p99 latency and the server's CPU time per request (its process tree's user + system time
over the measured run, divided by the requests wrk completed).

    .venv/bin/python -m bench.hot_path [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/0] [--asgi-server granian,uvicorn]
        [--connections 64,256] [--duration 10] [--warmup 3] [--rounds 1]
        [--baseline-src DIR]

``--baseline-src`` measures the app of another source tree beside this one in the same run
(before/after without the machine's load drifting between two runs), for example:

    mkdir -p /tmp/cc-before && git archive 341d3de src | tar -x -C /tmp/cc-before
    .venv/bin/python -m bench.hot_path --baseline-src /tmp/cc-before/src

Creates its own database (migrated, filled by `chainconsult demo-data`), drops it at the end.
The app runs as in production (CHAINCONSULT_ENV=production, Redis for cache and rate limits,
multiprocess metrics, LOG_LEVEL=WARNING) and the load generator is *not* a trusted IP: every
request is counted against a rate limit set high enough that nothing is refused, so the
shared counting on Redis is part of what is measured. Needs wrk on PATH."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-that-is-long-enough-for-signing"
DIRECTORY = "/api/v2/experts?sort=rating"
ME = "/api/v2/auth/me"
DEMO_CLIENT = "client000@demo.chainconsult.dev"
DEMO_PASSWORD = "demo password 2026"  # the demo data's published password
BODY_ENV = "HOT_PATH_BODY_FILE"
APP = "chainconsult.app:create_app"
BARE = "bench.hot_path:bare_app"
CHAINCONSULT = str(Path(sys.executable).parent / "chainconsult")
_MS_PER = {"us": 0.001, "ms": 1.0, "s": 1000.0}


# The bare comparison app ---------------------------------------------------------------------


def bare_app() -> Any:
    """A FastAPI app with one route answering the bytes in $HOT_PATH_BODY_FILE: the least any
    FastAPI app on the same server can do for this page."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    body = Path(os.environ[BODY_ENV]).read_bytes()
    app = FastAPI()

    @app.get("/api/v2/experts")
    async def experts() -> Response:
        return Response(body, media_type="application/json")

    return app


# Servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(kind: str, target: str, port: int) -> list[str]:
    """One worker of ``target`` (a factory) on ``kind``, configured as `chainconsult serve`
    configures it."""
    if kind == "uvicorn":
        return [sys.executable, "-m", "bench.hot_path", "--run-uvicorn", target, str(port)]
    if kind == "granian":
        return [
            str(Path(sys.executable).parent / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "1",
            "--no-ws",
            # As `chainconsult serve` (commands/serve.py, granian_server) sets them.
            "--http1-header-read-timeout",
            "5000",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            target,
        ]
    raise ValueError(f"unknown ASGI server {kind!r}")


def run_uvicorn(target: str, port: int) -> None:
    """uvicorn as `chainconsult serve` ran it before it moved to granian (then in cli.py), for one
    worker, less the header-timeout protocol subclass that left with it (httptools itself)."""
    import uvicorn

    uvicorn.run(
        target,
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        http="httptools",
        timeout_keep_alive=5,
    )


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and its children (granian's worker)."""
        total = 0.0
        try:
            root = psutil.Process(self.process.pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
        return total


@contextmanager
def running(name: str, kind: str, target: str, env: dict[str, str], work: Path) -> Iterator[Server]:
    port = free_port()
    log = work / f"{name}-{kind}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            server_command(kind, target, port),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} on {kind} exited; see {log}")
            try:
                if httpx.get(f"{url}/api/v2/experts", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} on {kind} did not start; see {log}")
            time.sleep(0.3)
        yield Server(f"{name}/{kind}", process, url)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


# wrk -----------------------------------------------------------------------------------------


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests, requests/s, latency percentiles (ms), non-2xx/3xx and socket errors from
    `wrk --latency` output."""
    result: dict[str, Any] = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rps is None or total is None:
        raise ValueError(f"not wrk output: {output[:200]!r}")
    result["rps"] = float(rps.group(1))
    result["requests"] = int(total.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result["socket_errors"] = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if match:
            result[f"p{pct}_ms"] = float(match.group(1)) * _MS_PER[match.group(2)]
    return result


def wrk(url: str, path: str, *, seconds: float, connections: int, headers: Sequence[str]) -> str:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for header in headers:
        command += ["-H", header]
    return subprocess.run([*command, url + path], capture_output=True, text=True, check=True).stdout


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    """Which server answers it: ``bare``, ``app`` or ``baseline`` (the app from another
    source tree, for before/after in one run)."""
    path: str
    auth: bool = False


SCENARIOS = (
    Scenario("bare FastAPI route, same bytes", "bare", DIRECTORY),
    Scenario("baseline: cached directory read", "baseline", DIRECTORY),
    Scenario("cached directory read", "app", DIRECTORY),
    Scenario("baseline: authenticated /auth/me", "baseline", ME, auth=True),
    Scenario("authenticated /auth/me", "app", ME, auth=True),
)


def measure(
    server: Server,
    scenario: Scenario,
    *,
    seconds: float,
    warmup: float,
    connections: int,
    headers: Sequence[str],
) -> dict[str, Any]:
    if warmup > 0:
        wrk(server.url, scenario.path, seconds=warmup, connections=connections, headers=headers)
    before = server.cpu_seconds()
    out = wrk(server.url, scenario.path, seconds=seconds, connections=connections, headers=headers)
    used = server.cpu_seconds() - before
    result = parse_wrk(out)
    result["cpu_us"] = used / result["requests"] * 1e6 if result["requests"] else float("nan")
    return result


# Set-up --------------------------------------------------------------------------------------


def create_database(server: str, template: str | None = None) -> tuple[str, str]:
    name = f"cc_hot_{uuid.uuid4().hex[:10]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(statement)
    return name, urlsplit(server)._replace(path=f"/{name}").geturl()


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def app_env(database_url: str, redis_url: str, work: Path) -> dict[str, str]:
    metrics = work / "metrics"
    metrics.mkdir(exist_ok=True)
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"cchot-{uuid.uuid4().hex[:8]}",
        "CHAINCONSULT_ENV": "production",
        "SECRET_KEY": SECRET,
        "CHAINCONSULT_DATA_DIR": str(work / "var"),
        "LOG_LEVEL": "WARNING",
        # Counted, never refused: the limit's bookkeeping is part of the measurement.
        "RATE_LIMIT_ANONYMOUS": "100000000/minute",
        "RATE_LIMIT_FREE": "100000000/minute",
        "RATE_LIMIT_PRO": "100000000/minute",
        "RATE_LIMIT_ENTERPRISE": "100000000/minute",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def demo_database(
    server: str, redis_url: str, prefix: str
) -> Iterator[tuple[dict[str, str], Path]]:
    """A database of its own on ``server``, migrated and filled by `chainconsult demo-data`:
    yields the app's environment for it and a work directory; both are removed afterwards.

    BENCH_DEMO_TEMPLATE names a database on ``server`` that already holds the migrated demo
    data (the test suite keeps one): the database is then a copy of it, made in a second."""
    template = os.environ.get("BENCH_DEMO_TEMPLATE")
    name, database_url = create_database(server, template)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        env = app_env(database_url, redis_url, work)
        for command in () if template else ("migrate", "demo-data"):
            done = subprocess.run([CHAINCONSULT, command], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"chainconsult {command} failed:\n{done.stderr[-2000:]}")
        yield env, work
    finally:
        drop_database(server, name)
        shutil.rmtree(work, ignore_errors=True)


def log_in(url: str) -> str:
    response = httpx.post(
        f"{url}/api/v2/auth/login",
        json={"email": DEMO_CLIENT, "password": DEMO_PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def table(rows: list[tuple[str, int, str, dict[str, Any]]]) -> str:
    """Markdown rows; ``vs bare`` is req/s over the bare route's on the same server and
    connection count."""
    bare = {(kind, c): r["rps"] for kind, c, name, r in rows if name == SCENARIOS[0].name}
    lines = [
        "| server | connections | scenario | req/s | vs bare | p50 ms | p99 ms | CPU µs/req "
        "| errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, connections, name, r in rows:
        reference = bare.get((kind, connections))
        ratio = f"{r['rps'] / reference:.2f}x" if reference else "n/a"
        errors = r["non_2xx"] + r["socket_errors"]
        p50, p99 = r.get("p50_ms", float("nan")), r.get("p99_ms", float("nan"))
        lines.append(
            f"| {kind} | {connections} | {name} | {r['rps']:,.0f} | {ratio} | {p50:.2f} "
            f"| {p99:.2f} | {r['cpu_us']:.0f} | {errors} |"
        )
    return "\n".join(lines)


def median_rows(
    results: dict[tuple[str, int, str], list[dict[str, Any]]],
) -> list[tuple[str, int, str, dict[str, Any]]]:
    """One row per (server, connections, scenario): the round with the median req/s."""
    rows = []
    for (kind, connections, name), runs in results.items():
        ordered = sorted(runs, key=lambda r: r["rps"])
        rows.append((kind, connections, name, ordered[len(ordered) // 2]))
    return rows


def run_server_kind(
    kind: str, env: dict[str, str], work: Path, args: argparse.Namespace
) -> dict[tuple[str, int, str], list[dict[str, Any]]]:
    """Every scenario on one ASGI server: the bare app, our app and (with --baseline-src) the
    baseline app, all up at once, measured interleaved."""
    results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    levels = [int(c) for c in args.connections.split(",")]
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(running("app", kind, APP, env, work))
        servers = {"app": app}
        if args.baseline_src:
            baseline_env = {**env, "PYTHONPATH": f"{args.baseline_src}{os.pathsep}{ROOT}"}
            servers["baseline"] = stack.enter_context(
                running("baseline", kind, APP, baseline_env, work)
            )
        body = httpx.get(app.url + DIRECTORY, timeout=10).content
        (work / "body.json").write_bytes(body)
        token = log_in(app.url)
        bare_env = {**env, BODY_ENV: str(work / "body.json")}
        servers["bare"] = stack.enter_context(running("bare", kind, BARE, bare_env, work))
        for server in servers.values():
            if httpx.get(server.url + DIRECTORY, timeout=10).content != body:
                raise SystemExit(f"{server.name} answers other bytes than the app")
        for _ in range(args.rounds):
            for connections in levels:
                for scenario in SCENARIOS:
                    server = servers.get(scenario.server)
                    if server is None:
                        continue
                    headers = [f"Authorization: Bearer {token}"] if scenario.auth else []
                    result = measure(
                        server,
                        scenario,
                        seconds=args.duration,
                        warmup=args.warmup,
                        connections=connections,
                        headers=headers,
                    )
                    results.setdefault((kind, connections, scenario.name), []).append(result)
                    print(
                        f"{kind} c={connections} {scenario.name}: {result['rps']:,.0f} req/s, "
                        f"p99 {result.get('p99_ms', 0):.2f} ms, {result['cpu_us']:.0f} µs CPU/req",
                        flush=True,
                    )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--asgi-server", default="granian", help="comma list: granian (as serve), uvicorn"
    )
    parser.add_argument("--connections", default="64,256", help="comma list")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per point")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds per point")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (median)")
    parser.add_argument(
        "--baseline-src",
        help="a src/ directory of another version (e.g. from `git archive`): its app is "
        "measured beside this one, in the same run",
    )
    parser.add_argument("--run-uvicorn", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_uvicorn:
        run_uvicorn(args.run_uvicorn[0], int(args.run_uvicorn[1]))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk)")
    with demo_database(args.server, args.redis, "cchot") as (env, work):
        print(f"load average at start: {load_average()}", flush=True)
        results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
        for kind in (k.strip() for k in args.asgi_server.split(",") if k.strip()):
            results.update(run_server_kind(kind, env, work, args))
        print()
        print(table(median_rows(results)))
        print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
