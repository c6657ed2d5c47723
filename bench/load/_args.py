"""The command line of `python -m bench.load` (its module docstring says what it runs)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from bench.load import variants
from bench.load._scenarios import SCENARIOS

BASELINE_SCENARIOS = ("cached_read", "mixed")
"""What issue 20 compares with the main of its day: cached read and mixed throughput."""


def _names(value: str) -> list[str]:
    return [name for name in value.split(",") if name]


def _connections(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part]


def _seconds_range(value: str) -> tuple[float, float]:
    low, high = (float(part) for part in value.split(","))
    return low, high


def parse_args(argv: list[str] | None, *, description: str = "") -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    names = [s.name for s in SCENARIOS]
    parser.add_argument("--scenarios", type=_names, default=names)
    parser.add_argument("--connections", type=_connections, default=[64, 256])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per point")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per point")
    parser.add_argument(
        "--writers", type=int, help="experts who propose (default 30; 200 for the soak)"
    )
    parser.add_argument(
        "--variants",
        type=variants.parse,
        default="info,tracing,tracing10",
        help="side-by-side servers with one setting changed (info, tracing, tracing10; none)",
    )
    parser.add_argument(
        "--variant-scenarios",
        type=_names,
        default=["cached_read"],
        help="the scenarios the variants run",
    )
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="above 1: the default, variant and baseline servers run at once and are measured "
        "in turns, this many rounds per point; costs and ratios from the medians",
    )  # fmt: skip
    parser.add_argument(
        "--pin", action="store_true",
        help="with --rounds: one-worker servers on CPU 0, wrk on CPU 1",
    )  # fmt: skip
    parser.add_argument("--no-peer", action="store_true", help="skip the peer stack")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare route")
    parser.add_argument("--held-connections", type=int, default=10_000, help="0 skips them")
    parser.add_argument("--held-seconds", type=float, default=60)
    parser.add_argument("--held-ramp", type=float, default=250, help="connections a second")
    parser.add_argument(
        "--held-interval", type=_seconds_range, default=(20.0, 40.0),
        help="seconds between requests on a held connection, MIN,MAX",
    )  # fmt: skip
    parser.add_argument(
        "--held-keep-alive", type=int, default=75,
        help="HTTP_KEEP_ALIVE_TIMEOUT for the held run; 0 keeps the server's default (5 s)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", metavar="REV",
        help="also serve this commit of the repository (its own worktree, virtualenv when its "
        "constraints.txt differs, and database), alternating with this tree per point",
    )  # fmt: skip
    parser.add_argument(
        "--baseline-scenarios", type=_names, default=list(BASELINE_SCENARIOS),
        help="the scenarios run against the baseline too",
    )  # fmt: skip
    parser.add_argument("--soak", action="store_true", help="run the soak instead (make soak)")
    parser.add_argument("--soak-seconds", type=int, default=300)
    parser.add_argument("--soak-warmup", type=int, default=30)
    parser.add_argument("--soak-connections", type=int, default=64)
    parser.add_argument("--output", type=Path, help="rewrite this file's own section")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    unknown = (set(args.scenarios) | set(args.baseline_scenarios)) - set(names)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {names}")
    if args.baseline and args.soak:
        parser.error("--baseline compares the scenarios of `make bench`, not the soak")
    if args.pin and args.rounds < 2:
        parser.error("--pin goes with --rounds N (N > 1): it pins the turns' servers")
    if args.pin and not {0, 1} <= os.sched_getaffinity(0):
        parser.error("--pin needs CPUs 0 and 1 (servers on CPU 0, wrk on CPU 1)")
    if args.pin and shutil.which("taskset") is None:
        parser.error("--pin needs taskset (Debian's util-linux)")
    return args
