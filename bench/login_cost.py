"""Event-loop CPU of a login burst (the app called in-process), side by side with another
source tree in the same run: a figure that a busy shared machine moves by some 10 %, where
bench/login_burst.py's latencies follow the machine's load.

    .venv/bin/python -m bench.login_cost [--baseline-src DIR] [--rounds 3] [--burst 200]
        [--shed 100] [--server postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/0]

``--baseline-src`` is a src/ directory of another version (`git archive REV src | tar -x -C
DIR`). Each round runs each tree in a fresh process (alternating) on a fresh database copy of
one migrated template, with Redis, the default login throttle and the default RATE_LIMIT_AUTH,
through httpx's ASGI transport (every middleware, as in production, no job worker). It
measures the main thread's CPU (the event loop's, and the test client's own share; not the
hashing threads'): four wrong logins one after another (each admitted, checked and audited),
then --burst wrong logins at once on one account from 12 addresses, as bench/login_burst.py
sends them, then --shed logins one after another while the login gate is held full (its
slots and queue taken, as a burst takes them: each answered 503 login-busy). Every request of
the burst takes this CPU from the other requests of its process."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from bench._trees import child_in_tree
from bench.cache_directory import create_database, drop_database
from bench.hot_path import app_env, load_average
from psycopg import sql

from chainconsult.infra.db.migrate import migrate

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"


async def _measure(burst: int, shed_count: int) -> dict[str, object]:
    import httpx
    from asgi_lifespan import LifespanManager

    from chainconsult.app import create_app

    app = create_app()
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

            async def attempt(email: str, source: str) -> int:
                http.cookies.clear()
                response = await http.post(
                    "/api/v2/auth/login",
                    json={"email": email, "password": WRONG},
                    headers={"X-Forwarded-For": source},
                )
                return response.status_code

            for number, email in enumerate(("one@example.com", "victim@example.com")):
                response = await http.post(
                    "/api/v2/auth/register",
                    json={"email": email, "password": PASSWORD, "display_name": "bench"},
                    headers={"X-Forwarded-For": f"192.0.2.{number + 1}"},
                )
                response.raise_for_status()
            # Warm-up: the first login of a process compiles what the others reuse.
            await attempt("one@example.com", "192.0.2.100")
            started = time.thread_time()
            admitted = [await attempt("one@example.com", f"203.0.113.{n + 1}") for n in range(4)]
            admitted_ms = (time.thread_time() - started) / len(admitted) * 1000
            started = time.thread_time()
            answers = await asyncio.gather(
                *(attempt("victim@example.com", f"198.51.100.{n % 12 + 1}") for n in range(burst))
            )
            burst_ms = (time.thread_time() - started) * 1000
            shed_ms, shed = await _shed(app, attempt, shed_count)
    return {
        "admitted_ms": admitted_ms,
        "admitted": dict(Counter(admitted)),
        "burst_ms": burst_ms,
        "burst": dict(Counter(answers)),
        "shed_ms": shed_ms,
        "shed": dict(Counter(shed)),
    }


async def _shed(
    app: Any, attempt: Callable[[str, str], Awaitable[int]], count: int
) -> tuple[float, list[int]]:
    """Main-thread CPU per login refused at a full login gate (its slots and its queue held
    here, as a burst holds them), one after another, each from an address of its own."""
    gate = app.state.login_gate
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.admitted(600):
            await release.wait()

    slots = app.state.settings.login_throttle.database_slots
    holders = [asyncio.create_task(hold()) for _ in range(2 * slots)]
    await asyncio.sleep(0.1)
    try:
        started = time.thread_time()
        answers = [
            await attempt("victim@example.com", f"100.64.{n // 200}.{n % 200 + 1}")
            for n in range(count)
        ]
        return (time.thread_time() - started) / count * 1000, answers
    finally:
        release.set()
        await asyncio.gather(*holders)


def _copy(server: str, template: str) -> tuple[str, str]:
    name = f"cc_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return name, f"{server.rpartition('/')[0]}/{name}"


def _run_tree(src: str | None, env: dict[str, str], burst: int, shed: int) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        child_in_tree("bench.login_cost", src, env, ["--burst", str(burst), "--shed", str(shed)])
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--baseline-src", help="a src/ directory of another version")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--shed", type=int, default=100, help="logins sent at a full gate")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.burst, args.shed))))
        return
    template, template_url = create_database(args.server)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"cclogin-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        url = template_url.replace("postgresql://", "postgresql+psycopg://", 1)
        migrate(url, echo=lambda _: None)
        print(f"load average at start: {load_average()}", flush=True)
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if args.baseline_src:
            trees.insert(0, ("baseline", str(Path(args.baseline_src).resolve())))
        results: dict[str, list[dict[str, object]]] = {label: [] for label, _ in trees}
        for round_number in range(1, args.rounds + 1):
            for label, src in trees if round_number % 2 else trees[::-1]:
                name, database_url = _copy(args.server, template)
                env = app_env(database_url, args.redis, work)
                # The burst's addresses are read from X-Forwarded-For, as behind a proxy.
                env["TRUSTED_PROXIES"] = "127.0.0.1/32"
                env.pop("RATE_LIMIT_AUTH", None)  # the platform's default
                try:
                    result = _run_tree(src, env, args.burst, args.shed)
                finally:
                    drop_database(args.server, name)
                results[label].append(result)
                print(f"round {round_number}, {label}: {json.dumps(result)}", flush=True)
        print()
        print(
            f"| tree | ms CPU per admitted wrong login, each round | median | ms CPU per burst "
            f"of {args.burst}, each round | median | ms CPU per login shed at a full gate, "
            "each round | median |"
        )
        print("|---|---|---:|---|---:|---|---:|")
        for label, values in results.items():
            admitted = [float(str(value["admitted_ms"])) for value in values]
            bursts = [float(str(value["burst_ms"])) for value in values]
            shed = [float(str(value["shed_ms"])) for value in values]
            print(
                f"| {label} | {' / '.join(f'{v:.1f}' for v in admitted)} | "
                f"{statistics.median(admitted):.1f} | {' / '.join(f'{v:.0f}' for v in bursts)} "
                f"| {statistics.median(bursts):.0f} | {' / '.join(f'{v:.2f}' for v in shed)} "
                f"| {statistics.median(shed):.2f} |"
            )
        print(f"\nload average at end: {load_average()}")
    finally:
        drop_database(args.server, template)
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()


if __name__ == "__main__":
    main()
