"""The wrk scenarios and how one point (scenario x server x connections) is measured: a
warm-up, then wrk with the server's process tree read before and after (CPU seconds) and each
worker's RSS at the end. Write runs are undone afterwards, so every run, on either server,
starts from the same data."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.load._fixtures import FixtureFiles, Fixtures, database_now, remove_writes
from bench.load._servers import Server
from bench.load._wrk import WrkResult, WrkRun


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    workers: int
    """Server workers: 1 for per-worker comparisons, 2 (this machine's cores) for `mixed`."""
    what: str
    writes: bool = False
    timeout_s: int = 10
    """wrk's per-request timeout: a slower answer counts as a timeout error."""
    warmup: bool = True
    """False where there is nothing to warm (argon2 has no cache) and a warm-up would only
    leave queued work behind for the measured run."""
    files: str = ""
    """Which fixture file the script reads, when not the one its script name implies."""
    ours_only: bool = False
    """A surface the peer stack does not have (the pages): chainconsult alone runs it."""

    @property
    def needs_tokens(self) -> bool:
        """Whether its script sends bearer tokens (the harness logs in only for those)."""
        return self.script in {"auth_read", "auth_write", "mixed"}

    def args(self, files: FixtureFiles, threads: int) -> list[str]:
        by_script: dict[str, Callable[[], list[str]]] = {
            "cached_read": lambda: [str(files.lists)],
            "auth_read": lambda: [str(files.tokens)],
            "auth_write": lambda: [str(files.pairs), str(threads)],
            "login": lambda: [str(files.logins)],
            "mixed": lambda: [
                str(files.lists),
                str(files.details),
                str(files.tokens),
                str(files.pairs),
                str(threads),
            ],
        }
        if self.files == "pages":
            return [str(files.pages)]
        return by_script[self.script]()


SCENARIOS = (
    Scenario(
        "cached_read", "cached_read", 1, "public directory `GET /api/v2/experts?...`, 7 query "
        "variants, all cached after warm-up",
    ),
    Scenario(
        "page_read", "cached_read", 1, "the directory page `GET /experts?...` (HTML) for "
        "anonymous visitors, the same 7 query variants, all cached after warm-up",
        files="pages", ours_only=True,
    ),
    Scenario(
        "auth_read", "auth_read", 1, "`GET /api/v2/auth/me`, bearer tokens of 10 demo accounts "
        "(5 experts, 5 clients) in turn",
    ),
    Scenario(
        "auth_write", "auth_write", 1, "`POST /api/v2/projects/{id}/proposals` by logged-in "
        "experts on open projects, each (expert, project) pair once; a 409 is a pair sent "
        "twice after all were used, counted apart from errors",
        writes=True,
    ),
    Scenario(
        "login", "login", 1, "`POST /api/v2/auth/login` with correct passwords of 100 demo "
        "clients in turn (argon2id, 64 MiB, t=3)",
        timeout_s=30,
        warmup=False,
    ),
    Scenario(
        "mixed", "mixed", 2, "40 % directory lists, 40 % expert details, 15 % `GET "
        "/api/v2/auth/me`, 5 % proposals; 2 server workers (the machine's 2 cores)",
        writes=True,
    ),
)  # fmt: skip
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


@dataclass
class Measurement:
    scenario: str
    server: str
    connections: int
    workers: int
    result: WrkResult
    cpu_seconds: float
    wall_seconds: float
    rss_mb: list[float]
    command: str
    load_average: float
    """1-minute load average when the point ended (other work on the machine)."""
    turn: int | None = None
    """The round of a comparison in turns (--rounds, bench/load/turns.py); None elsewhere."""

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / max(self.result.requests, 1)

    @property
    def cpu_percent(self) -> float:
        """Server CPU as % of one core (200 % is both cores of this machine)."""
        return 100 * self.cpu_seconds / max(self.wall_seconds, 1e-9)

    @property
    def duplicates(self) -> int:
        """409s of a write scenario: pairs sent a second time, not failures of the server."""
        scenario = BY_NAME.get(self.scenario)
        return self.result.count(409) if scenario is not None and scenario.writes else 0


@dataclass(frozen=True)
class Figure:
    """One server's figure at one point: its measurement, or the medians of its turns."""

    requests_per_s: float
    cpu_ms_per_request: float


def figures(rows: list[Measurement]) -> dict[tuple[str, str, int], Figure]:
    """(server, scenario, connections) -> Figure. A point measured in turns counts by each
    server's medians over its turns, and rows of that point outside the turns (the main
    pass's, measured at another time) are left out; a point measured once counts as it is."""
    in_turns = {(m.scenario, m.connections) for m in rows if m.turn is not None}
    samples: dict[tuple[str, str, int], list[Measurement]] = {}
    for m in rows:
        if m.turn is None and (m.scenario, m.connections) in in_turns:
            continue
        samples.setdefault((m.server, m.scenario, m.connections), []).append(m)
    return {
        key: Figure(
            statistics.median(m.result.requests_per_s for m in points),
            statistics.median(m.cpu_ms_per_request for m in points),
        )
        for key, points in samples.items()
    }


class Progress:
    """Progress lines on stderr: what runs, for how long, since the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"load [{elapsed:4.0f} s] {message}", file=sys.stderr, flush=True)


@dataclass
class PointOptions:
    seconds: int
    warmup_seconds: int
    threads: int = 2
    wrk_cpus: frozenset[int] | None = None


def measure(
    scenario: Scenario,
    server: Server,
    *,
    connections: int,
    files: FixtureFiles,
    fixtures: Fixtures,
    database_url: str,
    options: PointOptions,
    progress: Progress,
) -> Measurement:
    threads = min(options.threads, connections)

    def run(seconds: int) -> WrkRun:
        return WrkRun(
            url=server.base_url,
            script=scenario.script,
            connections=connections,
            seconds=seconds,
            args=scenario.args(files, threads),
            threads=threads,
            timeout_s=scenario.timeout_s,
            cpus=options.wrk_cpus,
        )

    warmup = options.warmup_seconds if scenario.warmup else 0
    progress(
        f"{scenario.name} on {server.name} ({server.workers} worker(s)), {connections} "
        f"connections: {warmup} s warm-up + {options.seconds} s"
    )
    since = database_now(database_url)
    try:
        if warmup:
            run(warmup).run()
            if scenario.writes:
                # After the idle wait: no write of the warm-up commits after the delete.
                server.wait_idle()
                remove_writes(database_url, fixtures, since)
                since = database_now(database_url)
        server.wait_idle()
        measured = run(options.seconds)
        cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
        result = measured.run()
        cpu_after, wall_after = server.cpu_seconds(), time.monotonic()
        rss = server.worker_rss_mb()
    finally:
        if scenario.writes:
            server.wait_idle()
            remove_writes(database_url, fixtures, since)
    return Measurement(
        scenario=scenario.name,
        server=server.name,
        connections=connections,
        workers=server.workers,
        result=result,
        cpu_seconds=cpu_after - cpu_before,
        wall_seconds=wall_after - wall_before,
        rss_mb=rss,
        command=measured.shown({**files.names(), server.base_url: "http://127.0.0.1:$PORT"}),
        load_average=os.getloadavg()[0],
    )
