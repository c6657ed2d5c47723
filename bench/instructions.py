"""Instructions per request, counted by valgrind's callgrind: a CPU comparison of two source
trees that the machine's load and drift cannot blur (the same tree and input give the same
count within a fraction of a percent, whatever else runs).

    .venv/bin/python -m bench.instructions [--baseline-src DIR] [--src DIR] [--requests 400]
        [--request 'GET /api/v2/auth/me' ...] [--server postgresql://postgres@127.0.0.1:5432/postgres]

``--baseline-src`` is a src/ directory of another version (``git archive REV src | tar -x -C
DIR``). Each request is sent to the app in-process as a bare ASGI call (no server, no client
library), without credentials, so it stops where the route's dependencies refuse it (a 401
for the routes that need a login) or answers a public route: what is counted is the edge
stack, FastAPI's routing and dependency solving and the problem response, not the database.
The rate limits count in process memory (no REDIS_URL): Redis round trips would make the
count depend on timing. Per tree, one process warms every request up (50 calls each) and
stops; one more per request does the same and then sends it ``--requests`` times: the
difference, divided by ``--requests``, is the figure. Each process takes about two minutes
under callgrind (the app's imports are most of it); two run at a time.

Needs valgrind (Debian: apt-get install -y valgrind) and a PostgreSQL server for the app's
start-up (nothing is created or written there)."""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WARMUP = 50
REPO_SRC = Path(__file__).resolve().parents[1] / "src"
DEFAULT_REQUESTS = [
    "GET /api/v2/auth/me",
    "POST /api/v2/projects/00000000-0000-4000-8000-000000000001/proposals",
    "GET /api/v2/notifications",
]


def _parse_request(value: str) -> tuple[str, str]:
    method, _, path = value.partition(" ")
    if not method or not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected 'METHOD /path', got {value!r}")
    return method.upper(), path


async def _send(
    factory: str, requests: list[tuple[str, str]], measured: tuple[str, str] | None, n: int
) -> None:
    import importlib

    from asgi_lifespan import LifespanManager
    from bench._asgi import asgi_status

    module, _, name = factory.partition(":")
    app = getattr(importlib.import_module(module), name)()
    async with LifespanManager(app) as manager:
        asgi = manager.app
        headers = [(b"host", b"bench"), (b"content-length", b"0")]
        client = ("198.51.100.7", 40000)

        for method, path in requests:
            for _ in range(WARMUP):
                await asgi_status(asgi, method, path, headers, client=client)
        if measured is not None:
            status = 0
            for _ in range(n):
                status = await asgi_status(asgi, *measured, headers, client=client)
            print(f"status {status}", file=sys.stderr)


def _child(args: argparse.Namespace) -> None:
    measured = _parse_request(args.measure) if args.measure else None
    asyncio.run(_send(args.app, [_parse_request(r) for r in args.request], measured, args.requests))


def _count(src: str | None, args: argparse.Namespace, measure: str | None) -> tuple[int, str]:
    """Instructions of one child process under callgrind, and the status it saw."""
    env = dict(os.environ)
    env.update(
        PYTHONHASHSEED="0",
        DATABASE_URL=args.server,
        CHAINCONSULT_DATA_DIR=tempfile.mkdtemp(prefix="ccinstr"),
        LOG_LEVEL="WARNING",
        RATE_LIMIT_ANONYMOUS="100000000/minute",
        RATE_LIMIT_FREE="100000000/minute",
        # Two processes run at once: one writing bytecode while the other compiles the same
        # module would count the compile in one of them only (main compiles the trees first).
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("REDIS_URL", None)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "bench.instructions", "--child",
        "--requests", str(args.requests), "--app", args.app,
        *(part for request in args.request for part in ("--request", request)),
        *(["--measure", measure] if measure else []),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    shutil.rmtree(env["CHAINCONSULT_DATA_DIR"], ignore_errors=True)
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or collected is None:
        raise SystemExit(f"a counting process failed:\n{done.stderr[-3000:]}")
    status = re.search(r"status (\d+)", done.stderr)
    return int(collected.group(1)), status.group(1) if status else "-"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--baseline-src", help="a src/ directory of another version")
    parser.add_argument(
        "--src", help="the src/ directory counted as this tree (default: this checkout's)"
    )
    parser.add_argument("--requests", type=int, default=400, help="measured calls per request")
    parser.add_argument(
        "--request", action="append", help="'METHOD /path' (repeatable; default: three routes)"
    )
    parser.add_argument(
        "--app",
        default="chainconsult.app:create_app",
        help="module:function that builds the app to count (its self-test counts a tiny one)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.request = args.request or DEFAULT_REQUESTS
    for request in args.request:
        try:
            _parse_request(request)
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
    if args.child:
        _child(args)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit(
            "bench.instructions: valgrind is not installed (apt-get install -y valgrind)"
        )
    trees: list[tuple[str, str | None]] = [
        ("this tree", str(Path(args.src).resolve()) if args.src else None)
    ]
    if args.baseline_src:
        trees.insert(0, ("baseline", str(Path(args.baseline_src).resolve())))
    for _, src in trees:
        # Counted as a server runs them: from compiled bytecode (the count moves by about
        # 1 % with and without it).
        compileall.compile_dir(src or str(REPO_SRC), quiet=1)
    jobs = [(label, src, measure) for label, src in trees for measure in [None, *args.request]]
    print(
        f"{len(jobs)} processes under callgrind, two at a time (about 2 minutes each)", flush=True
    )

    def count(job: tuple[str, str | None, str | None]) -> tuple[int, str]:
        label, src, measure = job
        counted = _count(src, args, measure)
        print(f"  {label}: {measure or 'warm-up only'}: {counted[0]:,} instructions", flush=True)
        return counted

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(count, jobs))
    results = {
        (label, measure): count for (label, _, measure), count in zip(jobs, counts, strict=True)
    }
    print()
    columns = " | ".join(f"{label} (instructions/request)" for label, _ in trees)
    print(f"| request | status | {columns} |")
    print(f"|---|---:|{'---:|' * len(trees)}")
    for request in args.request:
        cells, statuses = [], []
        for label, _ in trees:
            total, status = results[(label, request)]
            base, _ = results[(label, None)]
            cells.append(f"{(total - base) / args.requests / 1e6:.3f} M")
            statuses.append(status)
        # One status when the trees agree; each tree's otherwise (a 500 is not a speed-up).
        shown = statuses[0] if len(set(statuses)) == 1 else " / ".join(statuses)
        print(f"| `{request}` | {shown} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
