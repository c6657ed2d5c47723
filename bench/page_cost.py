"""CPU per anonymous directory read, the app called in-process: the cached API read and the
directory page (the 7 queries of `make bench`), each without cookies (answered by the
cached-read shortcut) and with the form-token cookie a visitor gets from the login page (the
shortcut leaves it to the route), side by side with another source tree in the same run.

    .venv/bin/python -m bench.page_cost [--baseline-src DIR] [--requests 4000] [--rounds 3]
        [--server postgresql://postgres@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379/0]

``--baseline-src`` is a src/ directory of another version, for example:

    mkdir -p /tmp/cc-before && git archive main src | tar -x -C /tmp/cc-before
    .venv/bin/python -m bench.page_cost --baseline-src /tmp/cc-before/src

Creates its own database (migrated, filled by `chainconsult demo-data`), drops it at the end.
Each round runs each tree in a fresh process (alternating, so drift on a shared machine hits
both): every path is read 3 times unmeasured (cached after that), then each kind of read
``--requests`` times, its process CPU time per request printed (every middleware, Redis for
cache and rate limits; the ASGI callable awaited directly: no server, no socket)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._asgi import asgi_status
from bench._trees import child_in_tree
from bench.hot_path import demo_database, load_average
from bench.load._fixtures import DIRECTORY_QUERIES

COOKIE = (b"cookie", b"csrf_token=a-form-token-from-the-login-page")
KINDS: dict[str, tuple[str, tuple[tuple[bytes, bytes], ...]]] = {
    "API read": ("/api/v2/experts", ()),
    "page": ("/experts", ()),
    "API read, cookie": ("/api/v2/experts", (COOKIE,)),
    "page, cookie": ("/experts", (COOKIE,)),
}
"""What is read: the path and the headers besides Host."""


async def _measure(count: int) -> dict[str, float]:
    from asgi_lifespan import LifespanManager

    from chainconsult.app import create_app

    app = create_app()
    async with LifespanManager(app) as manager:

        async def read(path: str, query: str, headers: tuple[tuple[bytes, bytes], ...]) -> None:
            target = f"{path}{query}"
            status = await asgi_status(manager.app, "GET", target, ((b"host", b"bench"), *headers))
            if status != 200:
                raise SystemExit(f"GET {target} answered {status}")

        for path, headers in KINDS.values():
            for query in DIRECTORY_QUERIES:
                for _ in range(3):
                    await read(path, query, headers)
        cpu_us: dict[str, float] = {}
        for kind, (path, headers) in KINDS.items():
            started = time.process_time()
            for index in range(count):
                await read(path, DIRECTORY_QUERIES[index % len(DIRECTORY_QUERIES)], headers)
            cpu_us[kind] = (time.process_time() - started) / count * 1e6
        return cpu_us


def _run_tree(src: str | None, env: dict[str, str], count: int) -> dict[str, float]:
    result: dict[str, float] = json.loads(
        child_in_tree("bench.page_cost", src, env, ["--requests", str(count)])
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--baseline-src", help="a src/ directory of another version")
    parser.add_argument("--requests", type=int, default=4000, help="measured per kind of read")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.requests))))
        return
    with demo_database(args.server, args.redis, "ccpage") as (env, _):
        env["EMAIL_SERVICE"] = "disabled"
        print(f"load average at start: {load_average()}", flush=True)
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if args.baseline_src:
            trees.insert(0, ("baseline", str(Path(args.baseline_src).resolve())))
        results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
        for round_number in range(1, args.rounds + 1):
            for label, src in trees:
                cpu = _run_tree(src, env, args.requests)
                results[label].append(cpu)
                shown = ", ".join(f"{kind} {value:.0f}" for kind, value in cpu.items())
                print(f"round {round_number}, {label}: µs CPU per request: {shown}", flush=True)
        print()
        print(_table(results))
        print(f"\nload average at end: {load_average()}")


def _table(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "| tree | " + " | ".join(f"{kind} µs" for kind in KINDS) + " |",
        "|---|" + "---:|" * len(KINDS),
    ]
    for label, rounds in results.items():
        medians = [statistics.median(r[kind] for r in rounds) for kind in KINDS]
        lines.append(f"| {label} | " + " | ".join(f"{m:.0f}" for m in medians) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
