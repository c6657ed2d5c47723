"""CPU per request of GET paths on the real app called in process (its ASGI callable awaited
directly: no server, no socket), for this source tree and optionally another one side by
side, each in its own interpreter:

    .venv/bin/python -m bench.probe_cost [--paths /livez,/api/health] [--requests 20000]
        [--baseline-src DIR]

``--baseline-src`` takes a ``src/`` directory of another version (for example from
``git archive <commit> src | tar -x -C /tmp/before``). The app is configured for production
without Redis, on the PostgreSQL of BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres), which the probes' cached report hardly
queries. Prints ``time.process_time`` per request, the median of --rounds."""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._asgi import asgi_status

ROOT = Path(__file__).resolve().parent.parent


async def _measure(paths: list[str], requests: int, rounds: int) -> dict[str, float]:
    from chainconsult.app import create_app

    app = create_app()
    results: dict[str, float] = {}
    async with app.router.lifespan_context(app):

        async def one(path: str) -> int:
            return await asgi_status(app, "GET", path, [(b"host", b"127.0.0.1:8000")])

        for path in paths:
            if (status := await one(path)) != 200:
                raise SystemExit(f"GET {path} answered {status}")
            for _ in range(requests // 10):
                await one(path)
            samples = []
            for _ in range(rounds):
                gc.collect()
                started = time.process_time()
                for _ in range(requests):
                    await one(path)
                samples.append((time.process_time() - started) / requests * 1e6)
            results[path] = statistics.median(samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default="/livez,/readyz,/api/health,/api/v2/health")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", help="a src/ directory of another version")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if args.child:
        import uvloop

        print(json.dumps(uvloop.run(_measure(paths, args.requests, args.rounds))))
        return
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        "REDIS_URL": "",
        "CHAINCONSULT_ENV": "production",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-for-signing",
        "LOG_LEVEL": "WARNING",
    }
    trees = {"this tree": str(ROOT / "src")}
    if args.baseline_src:
        trees = {"baseline": str(Path(args.baseline_src).resolve()), **trees}
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ccprobe") as data_dir:
        for name, src in trees.items():
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.probe_cost",
                    "--child",
                    "--paths",
                    ",".join(paths),
                    "--requests",
                    str(args.requests),
                    "--rounds",
                    str(args.rounds),
                ],
                cwd=ROOT,
                env={**env, "PYTHONPATH": src, "CHAINCONSULT_DATA_DIR": data_dir},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
            rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
    names = list(rows)
    print("| path | " + " | ".join(f"{n} µs/request" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for path in paths:
        print(f"| GET {path} | " + " | ".join(f"{rows[n][path]:.1f}" for n in names) + " |")


if __name__ == "__main__":
    main()
