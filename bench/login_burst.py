"""A burst of wrong logins on one account against `chainconsult serve`, while another account
reads the expert directory at a steady rate (issue 19, done-when 2):

- the burst: --burst simultaneous logins with a wrong password on one account, from --sources
  client addresses (X-Forwarded-For from a trusted proxy); the right password is sent, from an
  address of its own, once the first attempts are refused (inside the burst) and again when
  every answer is in;
- the reader: another, logged-in account sends `GET /api/v2/experts?q=<random>` (a cache miss
  each time, so every read needs a database connection) at --rate per second, open loop;
- `/readyz` polled every 250 ms.

Usage:
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/login_burst.py [--burst 200] [--sources 12] [--rate 20]
        [--duration 30] [--workers 2] [--auth-limit 10/minute] [--no-demo-data]

It creates (and drops) its own database, loads the demo data (unless --no-demo-data), and runs
with the default login throttle and the default RATE_LIMIT_AUTH (--auth-limit changes it); the
reader's own plan quota is raised out of the way. Password checks are counted twice: the
burst's 401 answers and the `auth.login_failed` rows of the audit log."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

# The sibling scripts hold the shared steps; this one runs as a script from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_directory import create_database, drop_database
from health_load import Server

from chainconsult.config import LoginThrottleSettings
from chainconsult.infra.db.migrate import migrate

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
VICTIM = "victim@example.com"
READER = "reader@example.com"
KEEPALIVE_S = 1.0
RIGHT_SOURCE = "203.0.113.7"
"""Where the right password comes from: not one of the burst's addresses, so what refuses it
is the account's throttle, not that address's rate limit or failure count."""


@dataclass
class Observed:
    burst: list[httpx.Response] = field(default_factory=list)
    burst_seconds: float = 0.0
    right_inside: httpx.Response | None = None
    right_after: httpx.Response | None = None
    reads: list[tuple[float, str]] = field(default_factory=list)
    """(latency ms, status and problem kind) of each directory read."""
    ready: list[str] = field(default_factory=list)
    """Status (and problem kind) of each /readyz poll."""


async def _account(http: httpx.AsyncClient, email: str) -> None:
    response = await http.post(
        "/api/v2/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": email.split("@")[0]},
    )
    response.raise_for_status()


async def _read_steadily(base: str, token: str, rate: float, seconds: float, out: Observed) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    # Idle connections are dropped before the server's keep-alive timeout (5 s) can close
    # one under a request being sent on it.
    limits = httpx.Limits(max_connections=64, keepalive_expiry=KEEPALIVE_S)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def one() -> None:
            started = time.perf_counter()
            try:
                response = await http.get(
                    f"/api/v2/experts?q={uuid.uuid4().hex[:8]}", headers=headers
                )
                kind = _kind(response)
            except httpx.HTTPError as exc:
                kind = f"599 {type(exc).__name__}"
            out.reads.append(((time.perf_counter() - started) * 1000, kind))

        # Open loop: each read starts on its tick, whether or not the one before has answered.
        tasks = []
        started = time.perf_counter()
        for tick in range(int(rate * seconds)):
            delay = started + tick / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)


async def _poll_ready(base: str, seconds: float, out: Observed) -> None:
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_S)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5) as http:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            try:
                out.ready.append(_kind(await http.get("/readyz")))
            except httpx.HTTPError as exc:
                out.ready.append(f"599 {type(exc).__name__}")
            await asyncio.sleep(0.25)


async def _burst(base: str, size: int, sources: int, out: Observed) -> None:
    limits = httpx.Limits(max_connections=size + 2, keepalive_expiry=KEEPALIVE_S)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def attempt(password: str, source: str) -> httpx.Response:
            return await http.post(
                "/api/v2/auth/login",
                json={"email": VICTIM, "password": password},
                headers={"X-Forwarded-For": source},
            )

        started = time.perf_counter()
        tasks = [
            asyncio.ensure_future(attempt(WRONG, f"198.51.100.{n % sources + 1}"))
            for n in range(size)
        ]
        for done in asyncio.as_completed(tasks):
            if (await done).status_code == 429:
                out.right_inside = await attempt(PASSWORD, RIGHT_SOURCE)
                break
        out.burst = list(await asyncio.gather(*tasks))
        out.burst_seconds = time.perf_counter() - started
        out.right_after = await attempt(PASSWORD, RIGHT_SOURCE)


async def scenario(base: str, args: argparse.Namespace) -> Observed:
    out = Observed()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await _account(http, VICTIM)
        await _account(http, READER)
        login = await http.post("/api/v2/auth/login", json={"email": READER, "password": PASSWORD})
        login.raise_for_status()
        token = login.json()["access_token"]
    reader = asyncio.create_task(_read_steadily(base, token, args.rate, args.duration, out))
    ready = asyncio.create_task(_poll_ready(base, args.duration, out))
    # The reader's first seconds are its baseline; the burst comes a quarter of the way in.
    await asyncio.sleep(args.duration / 4)
    await _burst(base, args.burst, args.sources, out)
    await asyncio.gather(reader, ready)
    return out


def _failed_logins_audited(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'"
        ).fetchone()
    return int(row[0]) if row else -1


def _kind(response: httpx.Response) -> str:
    """Status and, for a problem, what kind (login-throttled, login-busy, database-busy...)."""
    if response.headers.get("content-type") != "application/problem+json":
        return str(response.status_code)
    body = response.json()
    return f"{response.status_code} {body.get('reason') or body['type'].rsplit('/', 1)[-1]}"


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


def report(
    out: Observed, audited: int, args: argparse.Namespace, load: tuple[float, float]
) -> None:
    throttle = LoginThrottleSettings()
    statuses = Counter(response.status_code for response in out.burst)
    checks = statuses[401]
    latencies = [ms for ms, _ in out.reads]
    reader_errors = Counter(kind for _, kind in out.reads if kind[0] == "5")
    server_errors = sum(reader_errors.values())
    not_ready = Counter(kind for kind in out.ready if kind != "200")
    inside = _kind(out.right_inside) if out.right_inside is not None else "not sent"
    after = _kind(out.right_after) if out.right_after is not None else "not sent"
    retry_after = out.right_after.headers.get("retry-after") if out.right_after else None
    p99 = _percentile(latencies, 99)

    print(
        f"\n`serve --workers {args.workers}`, burst of {args.burst} wrong logins on one account "
        f"from {args.sources} addresses, reader at {args.rate:g}/s for {args.duration:g} s, "
        f"demo data {'off' if args.no_demo_data else 'on'}, Redis "
        f"{'on' if os.environ.get('BENCH_REDIS_URL') else 'off'}, {os.cpu_count()} CPUs shared "
        f"by server and client; 1-minute load average {load[0]:.1f} before, {load[1]:.1f} after\n"
    )
    print("| burst | value |")
    print("|---|---:|")
    for kind, count in sorted(Counter(map(_kind, out.burst)).items()):
        print(f"| answers {kind} | {count} |")
    print(f"| passwords checked (401s) / audited failures | {checks} / {audited} |")
    print(
        f"| lockout threshold / free failures | {throttle.lockout_failures} / "
        f"{throttle.free_failures} |"
    )
    print(f"| right password inside the burst | {inside} |")
    print(f"| right password after the burst | {after} (Retry-After {retry_after}) |")
    print(f"| burst answered in | {out.burst_seconds:.2f} s |")
    print()
    print("| reader | reads | p50 ms | p99 ms | max ms | 5xx | /readyz polls | not 200 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| GET /api/v2/experts?q=... | {len(latencies)} | "
        f"{statistics.median(latencies) if latencies else 0:.1f} | {p99:.1f} | "
        f"{max(latencies, default=0):.1f} | {server_errors} | {len(out.ready)} | "
        f"{sum(not_ready.values())} |"
    )
    for kind, count in sorted(reader_errors.items()):
        print(f"\nreader answers {kind}: {count}")
    for kind, count in sorted(not_ready.items()):
        print(f"\n/readyz answers {kind}: {count}")
    print()
    targets = {
        "password checks <= lockout threshold (and = audited)": checks <= throttle.lockout_failures
        and checks == audited,
        "right password refused by the throttle inside and after the burst": inside
        == after
        == "429 login-throttled",
        "reader p99 < 100 ms and no 5xx": p99 < 100 and server_errors == 0,
        "/readyz 200 throughout": not not_ready,
    }
    for target, met in targets.items():
        print(f"- {target}: **{'PASS' if met else 'MISS'}**")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--sources", type=int, default=12)
    parser.add_argument("--rate", type=float, default=20.0, help="reads per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds the reader runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--auth-limit", help="RATE_LIMIT_AUTH (default: the platform's)")
    parser.add_argument("--no-demo-data", action="store_true")
    args = parser.parse_args()
    server_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL")
    name, database_url = create_database(server_url)
    data_dir = tempfile.mkdtemp(prefix="ccbench")
    try:
        url = make_url(database_url).set(drivername="postgresql+psycopg")
        migrate(url.render_as_string(hide_password=False), echo=lambda _: None)
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update(
            DATABASE_URL=database_url,
            CHAINCONSULT_ENV="production",
            SECRET_KEY=secrets.token_urlsafe(48),
            LOG_LEVEL="WARNING",
            REDIS_KEY_PREFIX=f"ccbench-{secrets.token_hex(4)}",
            CHAINCONSULT_DATA_DIR=data_dir,
            TRUSTED_PROXIES="127.0.0.1/32",
            RATE_LIMIT_FREE="100000/minute",
        )
        if args.auth_limit:
            env["RATE_LIMIT_AUTH"] = args.auth_limit
        if redis_url:
            env["REDIS_URL"] = redis_url
        else:
            env.pop("REDIS_URL", None)
        if not args.no_demo_data:
            subprocess.run(
                [sys.executable, "-m", "chainconsult", "demo-data"],
                env=env,
                check=True,
                capture_output=True,
                timeout=600,
            )
        load_before = os.getloadavg()[0]
        server = Server(env, args.workers)
        try:
            out = asyncio.run(scenario(server.base, args))
        finally:
            server.stop()
        audited = _failed_logins_audited(database_url)
        report(out, audited, args, (load_before, os.getloadavg()[0]))
    finally:
        drop_database(server_url, name)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
