"""A burst of wrong logins on one account against `chainconsult serve`, while another account
reads the expert directory at a steady rate (issue 19, done-when 2):

- the burst: --burst simultaneous logins with a wrong password on one account, from --sources
  client addresses (X-Forwarded-For from a trusted proxy); the right password is sent, from an
  address of its own, once the first attempts are refused (inside the burst) and again when
  every answer is in. The burst runs in a process of its own and speaks HTTP/1.1 through h11 on
  a connection per login, as an attacker's client elsewhere would: httpx's client work (some
  0.8 s of CPU for 200 requests, on the two cores the server shares) would otherwise be counted
  as the server's latency;
- the reader: another, logged-in account sends `GET /api/v2/experts?q=<random>` (a cache miss
  each time, so every read needs a database connection) at --rate per second, open loop;
- `/readyz` polled every 250 ms.

Usage:
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/login_burst.py [--burst 200] [--sources 12] [--rate 20]
        [--duration 30] [--workers 2] [--auth-limit 10/minute] [--no-demo-data]
        [--baseline-src DIR] [--rounds 1] [--burst-beside-reader]

It creates (and drops) its own databases: one migrated (and filled with the demo data unless
--no-demo-data) as a template, a copy of it for each run. It runs with the default login
throttle and the default RATE_LIMIT_AUTH (--auth-limit changes it); the reader's own plan quota
is raised out of the way. Password checks are counted twice: the burst's 401 answers and the
`auth.login_failed` rows of the audit log.

--baseline-src runs another source tree's server (`git archive REV src | tar -x -C DIR`) beside
this tree's, alternating, --rounds times each, so that the machine's drift hits both.
--burst-beside-reader sends the burst from the reader's process and event loop (how this
benchmark measured before 2026-12-07)."""

from __future__ import annotations

import argparse
import asyncio
import json
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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h11
import httpx
import psycopg
from psycopg import sql
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


@dataclass(frozen=True)
class Answer:
    """What the burst's client keeps of a login answer (it crosses a process boundary)."""

    kind: str
    """Status and, for a problem, what kind (see ``_kind``)."""
    retry_after: str | None = None

    @property
    def status(self) -> int:
        return int(self.kind.split()[0])


@dataclass
class BurstResult:
    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0
    right_inside: Answer | None = None
    right_after: Answer | None = None


@dataclass
class Observed:
    burst: BurstResult = field(default_factory=BurstResult)
    reads: list[tuple[float, str]] = field(default_factory=list)
    """(latency ms, status and problem kind) of each directory read."""
    ready: list[str] = field(default_factory=list)
    """Status (and problem kind) of each /readyz poll."""
    server_cpu_seconds: float | None = None
    """User + system CPU of the server's workers during the scenario (Linux)."""


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


def _answer(response: httpx.Response) -> Answer:
    return Answer(_kind(response), response.headers.get("retry-after"))


async def _login_raw(base: str, password: str, source: str) -> Answer:
    """One login on a connection of its own, written and read with h11 rather than httpx: the
    burst's client shares this machine's two cores with the server, and httpx's some 4 ms of
    CPU per request would be counted as the server's latency. An attacker's CPU is elsewhere."""
    url = httpx.URL(base)
    body = json.dumps({"email": VICTIM, "password": password}).encode()
    connection = h11.Connection(h11.CLIENT)
    try:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(
                connection.send(
                    h11.Request(
                        method="POST",
                        target="/api/v2/auth/login",
                        headers=[
                            ("Host", f"{url.host}:{url.port}"),
                            ("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))),
                            ("X-Forwarded-For", source),
                        ],
                    )
                )
                + connection.send(h11.Data(data=body))
                + connection.send(h11.EndOfMessage())
            )
            head: h11.Response | None = None
            content = b""
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await asyncio.wait_for(reader.read(65536), 60))
                elif isinstance(event, h11.Response):
                    head = event
                elif isinstance(event, h11.Data):
                    content += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        finally:
            writer.close()
    except (OSError, TimeoutError, h11.ProtocolError) as exc:
        # Reported with the answers (a reset connection on a saturated machine).
        return Answer(f"599 {type(exc).__name__}")
    assert head is not None
    headers = [(name.decode(), value.decode()) for name, value in head.headers]
    return _answer(httpx.Response(head.status_code, headers=headers, content=content))


async def _burst(base: str, size: int, sources: int) -> BurstResult:
    out = BurstResult()
    started = time.perf_counter()
    tasks = [
        asyncio.ensure_future(_login_raw(base, WRONG, f"198.51.100.{n % sources + 1}"))
        for n in range(size)
    ]
    for done in asyncio.as_completed(tasks):
        if (await done).status == 429:
            out.right_inside = await _login_raw(base, PASSWORD, RIGHT_SOURCE)
            break
    out.answers = list(await asyncio.gather(*tasks))
    out.seconds = time.perf_counter() - started
    out.right_after = await _login_raw(base, PASSWORD, RIGHT_SOURCE)
    return out


def _burst_in_this_process(base: str, size: int, sources: int) -> BurstResult:
    return asyncio.run(_burst(base, size, sources))


def _worker_cpu_seconds(server_pid: int) -> float | None:
    """User + system CPU so far of the server's worker processes; None off Linux."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
        total = 0
        for pid in children:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    except (OSError, ValueError):
        return None
    return total / tick


async def scenario(
    server: Server, args: argparse.Namespace, burster: ProcessPoolExecutor
) -> Observed:
    base = server.base
    out = Observed()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await _account(http, VICTIM)
        await _account(http, READER)
        login = await http.post("/api/v2/auth/login", json={"email": READER, "password": PASSWORD})
        login.raise_for_status()
        token = login.json()["access_token"]
    cpu_before = _worker_cpu_seconds(server.process.pid)
    reader = asyncio.create_task(_read_steadily(base, token, args.rate, args.duration, out))
    ready = asyncio.create_task(_poll_ready(base, args.duration, out))
    # The reader's first seconds are its baseline; the burst comes a quarter of the way in.
    await asyncio.sleep(args.duration / 4)
    if args.burst_beside_reader:
        out.burst = await _burst(base, args.burst, args.sources)
    else:
        loop = asyncio.get_running_loop()
        out.burst = await loop.run_in_executor(
            burster, _burst_in_this_process, base, args.burst, args.sources
        )
    await asyncio.gather(reader, ready)
    cpu_after = _worker_cpu_seconds(server.process.pid)
    if cpu_before is not None and cpu_after is not None:
        out.server_cpu_seconds = cpu_after - cpu_before
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


@dataclass
class Run:
    tree: str
    out: Observed
    audited: int
    load: tuple[float, float]

    @property
    def latencies(self) -> list[float]:
        return [ms for ms, _ in self.out.reads]

    @property
    def reader_errors(self) -> Counter[str]:
        return Counter(kind for _, kind in self.out.reads if kind[0] == "5")

    @property
    def not_ready(self) -> Counter[str]:
        return Counter(kind for kind in self.out.ready if kind != "200")

    def targets(self) -> dict[str, bool]:
        throttle = LoginThrottleSettings()
        burst = self.out.burst
        checks = sum(answer.status == 401 for answer in burst.answers)
        inside = burst.right_inside.kind if burst.right_inside else "not sent"
        after = burst.right_after.kind if burst.right_after else "not sent"
        return {
            "password checks <= lockout threshold (and = audited)": checks
            <= throttle.lockout_failures
            and checks == self.audited,
            # Inside the burst the gate may shed it before the throttle sees it: refused
            # either way, its password never checked. After the burst only the lockout speaks.
            "right password refused inside the burst and throttled after it": inside
            in {"429 login-throttled", "503 login-busy"}
            and after == "429 login-throttled",
            "reader p99 < 100 ms and no 5xx": _percentile(self.latencies, 99) < 100
            and not self.reader_errors,
            "/readyz 200 throughout": not self.not_ready,
        }


def report_run(run: Run, args: argparse.Namespace) -> None:
    throttle = LoginThrottleSettings()
    burst = run.out.burst
    checks = sum(answer.status == 401 for answer in burst.answers)
    inside = burst.right_inside.kind if burst.right_inside else "not sent"
    after = burst.right_after.kind if burst.right_after else "not sent"
    retry_after = burst.right_after.retry_after if burst.right_after else None
    print(
        f"\n### {run.tree}: 1-minute load average {run.load[0]:.1f} before, {run.load[1]:.1f} "
        "after\n"
    )
    print("| burst | value |")
    print("|---|---:|")
    for kind, count in sorted(Counter(answer.kind for answer in burst.answers).items()):
        print(f"| answers {kind} | {count} |")
    print(f"| passwords checked (401s) / audited failures | {checks} / {run.audited} |")
    print(
        f"| lockout threshold / free failures | {throttle.lockout_failures} / "
        f"{throttle.free_failures} |"
    )
    print(f"| right password inside the burst | {inside} |")
    print(f"| right password after the burst | {after} (Retry-After {retry_after}) |")
    print(f"| burst answered in | {burst.seconds:.2f} s |")
    for kind, count in sorted(run.reader_errors.items()):
        print(f"\nreader answers {kind}: {count}")
    for kind, count in sorted(run.not_ready.items()):
        print(f"\n/readyz answers {kind}: {count}")
    print()
    for target, met in run.targets().items():
        print(f"- {target}: **{'PASS' if met else 'MISS'}**")


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(
        f"\n`serve --workers {args.workers}`, burst of {args.burst} wrong logins on one account "
        f"from {args.sources} addresses "
        f"({'beside the reader' if args.burst_beside_reader else 'from a process of its own'}), "
        f"reader at {args.rate:g}/s for {args.duration:g} s, demo data "
        f"{'off' if args.no_demo_data else 'on'}, Redis "
        f"{'on' if os.environ.get('BENCH_REDIS_URL') else 'off'}, {os.cpu_count()} CPUs shared "
        "by server and client"
    )
    for run in runs:
        report_run(run, args)
    print("\n### Reader\n")
    print(
        "| run | tree | reads | p50 ms | p99 ms | max ms | reads >= 100 ms | 5xx | /readyz polls "
        "| not 200 "
        "| server CPU s | load before / after |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for number, run in enumerate(runs, 1):
        latencies = run.latencies
        cpu = run.out.server_cpu_seconds
        print(
            f"| {number} | {run.tree} | {len(latencies)} | "
            f"{statistics.median(latencies) if latencies else 0:.1f} | "
            f"{_percentile(latencies, 99):.1f} | {max(latencies, default=0):.1f} | "
            f"{sum(1 for latency in latencies if latency >= 100)} | "
            f"{sum(run.reader_errors.values())} | {len(run.out.ready)} | "
            f"{sum(run.not_ready.values())} | {'-' if cpu is None else f'{cpu:.2f}'} | "
            f"{run.load[0]:.1f} / {run.load[1]:.1f} |"
        )


def _copy_database(server_url: str, template: str) -> tuple[str, str]:
    name = f"cc_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    base, _, _ = server_url.rpartition("/")
    return name, f"{base}/{name}"


def _environment(database_url: str, data_dir: str, args: argparse.Namespace) -> dict[str, str]:
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
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def run_once(
    tree: str,
    source: str | None,
    server_url: str,
    template: str,
    template_data_dir: str,
    args: argparse.Namespace,
    burster: ProcessPoolExecutor,
) -> Run:
    name, database_url = _copy_database(server_url, template)
    data_dir = tempfile.mkdtemp(prefix="ccbench")
    # The demo data's files (the object store) go with its rows.
    shutil.copytree(template_data_dir, data_dir, dirs_exist_ok=True)
    try:
        env = _environment(database_url, data_dir, args)
        if source is not None:
            env["PYTHONPATH"] = source
        load_before = os.getloadavg()[0]
        server = Server(env, args.workers)
        try:
            out = asyncio.run(scenario(server, args, burster))
        finally:
            server.stop()
        return Run(
            tree, out, _failed_logins_audited(database_url), (load_before, os.getloadavg()[0])
        )
    finally:
        drop_database(server_url, name)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--sources", type=int, default=12)
    parser.add_argument("--rate", type=float, default=20.0, help="reads per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds the reader runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--auth-limit", help="RATE_LIMIT_AUTH (default: the platform's)")
    parser.add_argument("--no-demo-data", action="store_true")
    parser.add_argument("--baseline-src", help="another tree's src/ to run beside this one")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--burst-beside-reader", action="store_true")
    args = parser.parse_args()
    server_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    template, template_url = create_database(server_url)
    data_dir = tempfile.mkdtemp(prefix="ccbench")
    runs: list[Run] = []
    try:
        url = make_url(template_url).set(drivername="postgresql+psycopg")
        migrate(url.render_as_string(hide_password=False), echo=lambda _: None)
        if not args.no_demo_data:
            subprocess.run(
                [sys.executable, "-m", "chainconsult", "demo-data"],
                env=_environment(template_url, data_dir, args),
                check=True,
                capture_output=True,
                timeout=600,
            )
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if args.baseline_src:
            trees.insert(0, ("baseline", str(Path(args.baseline_src).resolve())))
        # A process of its own for the burst, started before the first run (not during it).
        with ProcessPoolExecutor(1) as burster:
            burster.submit(int).result()
            for round_number in range(args.rounds):
                # Alternate the order, so that neither tree always runs first.
                ordered = trees if round_number % 2 == 0 else trees[::-1]
                for tree, source in ordered:
                    runs.append(
                        run_once(tree, source, server_url, template, data_dir, args, burster)
                    )
        report(runs, args)
    finally:
        drop_database(server_url, template)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
