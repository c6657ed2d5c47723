"""CPU per cached read with tracing off and on, or with the access log on, the app called in
process (its ASGI callable awaited: no server, no socket), each setting in a fresh process,
alternating:

    .venv/bin/python -m bench.trace_cost [--requests 6000] [--rounds 3] [--concurrency 16]
        [--variants off,tracing,tracing10,info] [--baseline-src DIR] [--src DIR]

``off`` is the default app (LOG_LEVEL=WARNING); ``tracing``, ``tracing10`` and ``info`` are
`bench.load`'s variants of the same names (every request traced, one in ten, exporting over
OTLP/HTTP to a sink in this process; LOG_LEVEL=INFO, its access lines written to a pipe that
this process reads). Creates its own database (migrated, filled by `chainconsult demo-data`)
and drops it at the end; Redis serves the rate limits, whose decisions the ``--concurrency`` callers
share in batches as a busy server's requests do. Printed per request: the process's CPU
(``time.process_time``, the export thread and the export of the measured spans included),
the main thread's alone (``time.thread_time``) and the rest (the export thread)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from bench._asgi import asgi_status
from bench._trees import child_in_tree
from bench.hot_path import demo_database, load_average
from bench.load._fixtures import DIRECTORY_QUERIES
from bench.load.variants import VARIANTS, OtlpSink

SETTINGS = ("off", "tracing", "tracing10", "info")


async def _measure(count: int, concurrency: int) -> dict[str, float]:
    from asgi_lifespan import LifespanManager

    from chainconsult.app import create_app

    try:
        from chainconsult.infra.tracing import active
    except ImportError:  # a tree from before tracing (--baseline-src)

        def active() -> None:
            return None

    app = create_app()
    async with LifespanManager(app) as manager:
        paths = [f"/api/v2/experts{query}" for query in DIRECTORY_QUERIES]

        async def reads(first: int, number: int) -> None:
            for index in range(first, first + number):
                path = paths[index % len(paths)]
                if (status := await asgi_status(manager.app, "GET", path)) != 200:
                    raise SystemExit(f"GET {path} answered {status}")

        await reads(0, 50 * len(paths))  # cached, and the code paths warm
        tracing = active()
        if tracing is not None:
            tracing.provider.force_flush()
        each = count // concurrency
        started, main_started = time.process_time(), time.thread_time()
        await asyncio.gather(*(reads(n, each) for n in range(concurrency)))
        main = time.thread_time() - main_started
        if tracing is not None:  # the measured requests' spans are part of their cost
            tracing.provider.force_flush()
        total = time.process_time() - started
        done = each * concurrency
        return {"total": total / done * 1e6, "main": main / done * 1e6}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--requests", type=int, default=6000, help="measured per process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="callers at once")
    parser.add_argument("--variants", default="off,tracing,tracing10")
    parser.add_argument("--baseline-src", help="a src/ directory of another version")
    parser.add_argument(
        "--src", help="the src/ directory measured as this tree (default: this checkout's)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        print(json.dumps(uvloop.run(_measure(args.requests, args.concurrency))))
        return
    settings = [name for name in args.variants.split(",") if name]
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"unknown variant(s): {', '.join(sorted(unknown))}")
    trees: list[tuple[str, str | None]] = [
        ("this tree", str(Path(args.src).resolve()) if args.src else None)
    ]
    if args.baseline_src:
        trees.insert(0, ("baseline", str(Path(args.baseline_src).resolve())))
    child_args = ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with demo_database(args.server, args.redis, "cctrace") as (env, _), OtlpSink() as sink:
        env["EMAIL_SERVICE"] = "disabled"
        print(f"load average at start: {load_average()}", flush=True)
        for round_number in range(1, args.rounds + 1):
            for label, src in trees:
                for setting in settings:
                    extra = VARIANTS[setting].env(sink.url) if setting != "off" else {}
                    cpu = json.loads(
                        child_in_tree("bench.trace_cost", src, {**env, **extra}, child_args)
                    )
                    results.setdefault((label, setting), []).append(cpu)
                    print(
                        f"round {round_number}, {label}, {setting}: µs CPU per request "
                        f"{cpu['total']:.0f} (main thread {cpu['main']:.0f})",
                        flush=True,
                    )
        print(f"\nload average at end: {load_average()}; the sink received {sink.exports} "
              f"exports, {sink.bytes:,} bytes\n")  # fmt: skip
    print(_table(results))


def _table(results: dict[tuple[str, str], list[dict[str, float]]]) -> str:
    lines = [
        "| tree | setting | CPU µs/request | main thread | other threads | vs off |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (label, setting), rounds in results.items():
        total = statistics.median(r["total"] for r in rounds)
        main_thread = statistics.median(r["main"] for r in rounds)
        off = results.get((label, "off"))
        versus = ""
        if off and setting != "off":
            base = statistics.median(r["total"] for r in off)
            versus = f"{100 * (total / base - 1):+.0f} %"
        lines.append(
            f"| {label} | {setting} | {total:.0f} | {main_thread:.0f} | "
            f"{total - main_thread:.0f} | {versus} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
