"""CPU per proposal (the platform's most frequent write), the app called in-process, side by
side with another source tree in the same run.

    .venv/bin/python -m bench.write_cost [--baseline-src DIR] [--proposals 600] [--rounds 3]
        [--server postgresql://postgres@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379/0]

``--baseline-src`` is a src/ directory of another version, for example:

    mkdir -p /tmp/cc-before && git archive 22ff32f src | tar -x -C /tmp/cc-before
    .venv/bin/python -m bench.write_cost --baseline-src /tmp/cc-before/src

Creates its own database (migrated, filled by `chainconsult demo-data`), drops it at the end.
Each round runs each tree in a fresh process (alternating, so drift on a shared machine hits
both): it logs 40 demo experts in, sends 30 unmeasured proposals, then ``--proposals`` more
through httpx's ASGI transport (every middleware, the app as in production, Redis for cache
and rate limits, no job worker) and prints the process's CPU time per proposal. Every
proposal is a new (expert, open project) pair, so all of them are 201s. The figure includes
the test client's own share (the same for both trees; about 0.4 ms on the machine of
bench/RESULTS.md), so the difference between the trees is the measure."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from bench._trees import child_in_tree
from bench.hot_path import demo_database, load_average
from bench.load._fixtures import DEMO_PASSWORD, load_fixtures

WRITERS = 40
WARMUP = 30


async def _measure(database_url: str, start: int, count: int, profile: str | None = None) -> float:
    import httpx
    from asgi_lifespan import LifespanManager

    from chainconsult.app import create_app

    fixtures = load_fixtures(database_url, writers=WRITERS)
    pairs = fixtures.pairs[start : start + WARMUP + count]
    if len(pairs) < WARMUP + count:
        raise SystemExit("not enough (expert, open project) pairs left in the demo data")
    app = create_app()
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            tokens = {}
            for email in fixtures.writers:
                login = await http.post(
                    "/api/v2/auth/login", json={"email": email, "password": DEMO_PASSWORD}
                )
                login.raise_for_status()
                tokens[email] = login.json()["access_token"]

            async def propose(index: int) -> None:
                pair = pairs[index]
                response = await http.post(
                    f"/api/v2/projects/{pair.project_id}/proposals",
                    headers={"Authorization": f"Bearer {tokens[pair.expert_email]}"},
                    json={
                        "cover_letter": "Three audits of this kind shipped, references on request.",
                        "price": {"amount": pair.price, "currency": pair.currency},
                        "estimated_days": 10,
                    },
                )
                if response.status_code != 201:
                    raise SystemExit(f"proposal answered {response.status_code}: {response.text}")

            for index in range(WARMUP):
                await propose(index)
            profiler = cProfile.Profile(time.process_time) if profile else None
            started = time.process_time()
            if profiler is not None:
                profiler.enable()
            for index in range(WARMUP, WARMUP + count):
                await propose(index)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            return (time.process_time() - started) / count * 1000


def _child(args: argparse.Namespace) -> None:
    cpu_ms = asyncio.run(
        _measure(os.environ["DATABASE_URL"], args.start, args.proposals, args.profile)
    )
    print(f"{cpu_ms:.3f}")


def _run_tree(
    src: str | None, env: dict[str, str], start: int, proposals: int, profile: str | None = None
) -> float:
    args = ["--start", str(start), "--proposals", str(proposals)]
    if profile:
        args += ["--profile", profile]
    return float(child_in_tree("bench.write_cost", src, env, args))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--baseline-src", help="a src/ directory of another version")
    parser.add_argument("--proposals", type=int, default=600, help="measured per process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the measured proposals of this tree (one round) into FILE; the CPU "
        "figure is then the profiler's, not comparable",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    with demo_database(args.server, args.redis, "ccwrite") as (env, _):
        env["EMAIL_SERVICE"] = "disabled"
        env["RATE_LIMIT_AUTH"] = "100000000/minute"  # 40 logins from one address
        print(f"load average at start: {load_average()}", flush=True)
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if args.baseline_src:
            trees.insert(0, ("baseline", str(Path(args.baseline_src).resolve())))
        results: dict[str, list[float]] = {label: [] for label, _ in trees}
        start = 0
        for round_number in range(1, args.rounds + 1):
            for label, src in trees:
                profile = args.profile if src is None and round_number == 1 else None
                cpu_ms = _run_tree(src, env, start, args.proposals, profile)
                start += WARMUP + args.proposals
                results[label].append(cpu_ms)
                print(
                    f"round {round_number}, {label}: {cpu_ms:.2f} ms CPU per proposal", flush=True
                )
        print()
        print("| tree | ms CPU per proposal, each round | median |")
        print("|---|---|---:|")
        for label, values in results.items():
            rounds = " / ".join(f"{value:.2f}" for value in values)
            print(f"| {label} | {rounds} | {statistics.median(values):.2f} |")
        print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
