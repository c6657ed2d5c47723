"""Run the chaos scenarios (all, or those named) and print their reports as Markdown.

    .venv/bin/python -m bench.chaos                  # every scenario (what `make chaos` runs)
    .venv/bin/python -m bench.chaos redis postgres   # some of them
    .venv/bin/python -m bench.chaos --quick          # shorter phases, for a smoke run

Each scenario starts its own PostgreSQL, Redis and SMTP sink on free loopback ports, the
server and job workers on them, injects its fault into those private processes only, and
removes everything when it ends (also on Ctrl-C, SIGTERM or its time limit). Exit status 1
when a scenario lost an acknowledged write or job, answered 5xx (or nothing) outside the
fault window, or served a stale read."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

from bench.chaos import job_worker_kill, postgres_terminate, redis_restart, server_worker_kill
from bench.chaos._report import ScenarioReport

SCENARIOS: dict[str, Callable[..., Coroutine[Any, Any, ScenarioReport]]] = {
    redis_restart.NAME: redis_restart.run,
    postgres_terminate.NAME: postgres_terminate.run,
    job_worker_kill.NAME: job_worker_kill.run,
    server_worker_kill.NAME: server_worker_kill.run,
}
TIME_LIMIT_S = 300
"""A scenario still running after this is stopped (and cleaned up) as failed."""


class ScenarioTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise ScenarioTimeout(f"the scenario ran past {TIME_LIMIT_S} s")


def _on_term(signum: int, frame: FrameType | None) -> None:
    # Unwinds through every context manager, so private services are stopped and removed.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: all)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="shorter load phases")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    header = (
        f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the start."
    )
    parts = [header, ""]
    failed = []
    for name in names:
        started = time.monotonic()
        print(f"chaos: {name} ...", file=sys.stderr, flush=True)
        signal.alarm(TIME_LIMIT_S)
        try:
            report = asyncio.run(SCENARIOS[name](quick=args.quick))
        except ScenarioTimeout as exc:
            parts.append(f"### {name}: FAIL\n\n{exc}\n")
            failed.append(name)
            continue
        finally:
            signal.alarm(0)
        text = report.markdown()
        parts.append(text)
        print(text, flush=True)
        print(f"chaos: {name} took {time.monotonic() - started:.0f} s", file=sys.stderr)
        if not report.passed:
            failed.append(name)
    summary = f"chaos: {len(names) - len(failed)} of {len(names)} scenarios passed" + (
        f"; failed: {', '.join(failed)}" if failed else ""
    )
    parts.append(summary)
    print(summary)
    if args.output is not None:
        args.output.write_text("\n".join(parts) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
