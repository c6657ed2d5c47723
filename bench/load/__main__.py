"""Load scenarios against chainconsult, the peer stack and a bare route, in one run.

    .venv/bin/python -m bench.load --output bench/RESULTS.md   # what `make bench` runs
    .venv/bin/python -m bench.load --soak --output bench/RESULTS.md   # `make soak`
    .venv/bin/python -m bench.load --seconds 3 --connections 16 --held-connections 500

Starts a private PostgreSQL and Redis (or uses BENCH_DATABASE_URL / BENCH_REDIS_URL: a fresh
database on that server, dropped at the end), migrates, loads the demo data, then for each
server: wrk per scenario and connection count; afterwards the bare route and 10,000 held
connections. Progress goes to stderr, the Markdown report to stdout and, with --output, into
its own section of that file."""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from bench.chaos._services import ServiceError
from bench.load import _results, baseline, soak, turns, variants
from bench.load._args import parse_args
from bench.load._fixtures import (
    FixtureFiles,
    Fixtures,
    load_fixtures,
    working_tokens,
    write_files,
)
from bench.load._scenarios import (
    SCENARIOS,
    Measurement,
    PointOptions,
    Progress,
    Scenario,
    measure,
)
from bench.load._servers import (
    Server,
    Services,
    bare_server,
    chainconsult_server,
    peer_present,
    peer_server,
    prepare_database,
    remove,
    server_env,
    services,
    workdir,
)
from bench.load._wrk import WrkRun
from bench.load.held import HeldOptions, HeldRun, raise_file_limit, run_held, somaxconn
from bench.load.variants import Variant

SECTION = "make bench"


@dataclass
class Run:
    args: argparse.Namespace
    svc: Services
    env: dict[str, str]
    fixtures: Fixtures
    work: Path
    progress: Progress
    rows: list[Measurement] = field(default_factory=list)
    bare_body: bytes | None = None
    otlp_url: str = ""
    tokens: dict[str, str] | None = None
    baseline: baseline.BaselineTree | None = None

    @property
    def point(self) -> PointOptions:
        return PointOptions(seconds=self.args.seconds, warmup_seconds=self.args.warmup)


def _run_server(run: Run, name: str, variant: Variant | None = None) -> None:
    """Every chosen scenario against one server: a 1-worker server for the per-worker
    scenarios, then a 2-worker one for `mixed`. A variant runs its own scenarios only."""
    chosen = run.args.variant_scenarios if variant else run.args.scenarios
    scenarios = [s for s in SCENARIOS if s.name in chosen]
    # A variant shares the default server's database: its tokens are still good there.
    tokens: dict[str, str] | None = run.tokens if variant else None
    for workers in sorted({s.workers for s in scenarios}):
        log = run.work / f"{variant.server if variant else name}-{workers}.log"
        server = (
            chainconsult_server(run.env, workers=workers, log=log)
            if name == "chainconsult"
            else peer_server(run.env, run.svc, workers=workers, log=log)
        )
        if variant is not None:
            server.name = variant.server
            server.env = variant.server_env(run.env, run.otlp_url)
        run.progress(f"starting {name} with {workers} worker(s)")
        # Only the default server is compared with the baseline, point by point unless the
        # comparison runs in turns (--rounds).
        in_turns = run.args.rounds > 1
        compared = (
            run.baseline if name == "chainconsult" and variant is None and not in_turns else None
        )
        with (
            server.start(),
            baseline.side(
                compared, scenarios, workers=workers, work=run.work, progress=run.progress
            ) as other,
        ):
            if not any(s.needs_tokens for s in scenarios):
                # Public reads only: no login (40 argon2 logins cost a busy host a minute).
                tokens = {}
            else:
                tokens = working_tokens(
                    server.base_url, run.fixtures, tokens, name=name, progress=run.progress
                )
                run.tokens = run.tokens or tokens
            files = write_files(run.work / name, run.fixtures, tokens)
            if name == "chainconsult" and run.bare_body is None:
                run.bare_body = _body(server, run.fixtures.list_paths[0])
            for scenario in (
                s
                for s in scenarios
                if s.workers == workers and (name == "chainconsult" or not s.ours_only)
            ):
                for connections in run.args.connections:
                    ours = functools.partial(_measure, run, scenario, server, connections, files)
                    run.rows += (
                        other.beside(
                            ours, scenario, connections, options=run.point, progress=run.progress
                        )
                        if other
                        else [ours()]
                    )


def _measure(
    run: Run,
    scenario: Scenario,
    server: Server,
    connections: int,
    files: FixtureFiles,
    options: PointOptions | None = None,
) -> Measurement:
    return measure(
        scenario,
        server,
        connections=connections,
        files=files,
        fixtures=run.fixtures,
        database_url=run.svc.database_url,
        options=options or run.point,
        progress=run.progress,
    )


def _body(server: Server, path: str) -> bytes:
    response = httpx.get(server.base_url + path, timeout=10)
    response.raise_for_status()
    return response.content


def _run_bare(run: Run) -> None:
    assert run.bare_body is not None
    paths = run.work / "bare-paths.tsv"
    paths.write_text("/api/v2/experts\n")
    with bare_server(run.env, run.bare_body, workdir=run.work, log=run.work / "bare.log") as bare:
        bare.start()
        for connections in run.args.connections:
            threads = min(2, connections)
            wrk = WrkRun(bare.base_url, "cached_read", connections, run.args.seconds, [str(paths)])
            wrk.threads = threads
            run.progress(f"bare route, {connections} connections: {run.args.seconds} s")
            if run.args.warmup:
                WrkRun(
                    bare.base_url, "cached_read", connections, run.args.warmup, [str(paths)]
                ).run()
            cpu, wall = bare.cpu_seconds(), time.monotonic()
            result = wrk.run()
            run.rows.append(
                Measurement(
                    scenario="bare",
                    server="bare",
                    connections=connections,
                    workers=1,
                    result=result,
                    cpu_seconds=bare.cpu_seconds() - cpu,
                    wall_seconds=time.monotonic() - wall,
                    rss_mb=bare.worker_rss_mb(),
                    command=wrk.shown(
                        {str(paths): "<bare-path.tsv>", bare.base_url: "http://127.0.0.1:$PORT"}
                    ),
                    load_average=os.getloadavg()[0],
                )
            )


def _report(
    run: Run,
    machine: _results.Machine,
    held: HeldRun | None,
    peer_note: str | None,
    sink: variants.OtlpSink | None = None,
) -> str:
    rows = run.rows
    args = run.args
    parts = [
        "## Load scenarios, peer stack, bare route, held connections (`make bench`, issue 10)",
        machine.markdown(run.svc.postgres_version, run.svc.redis_version),
        f"Command: `{_results.command_line(args.argv, soak=False)}` ({args.seconds} s per "
        f"point after a {args.warmup} s warm-up for the scenarios that have one; "
        f"connections {', '.join(map(str, args.connections))}). The wrk commands are listed "
        "per scenario below: $PORT is the server's free port of that run, and the files in "
        "<> are written by the harness from the demo data (the directory queries, one path "
        "per approved expert, bearer tokens from the server's own login, open-project and "
        "token pairs for proposals, client emails and the demo password).",
        "Set-up: private PostgreSQL and Redis on loopback (or BENCH_DATABASE_URL / "
        "BENCH_REDIS_URL), `chainconsult migrate` + `demo-data`; `chainconsult serve` with "
        "CHAINCONSULT_ENV=production, LOG_LEVEL=WARNING and the edge stack as in production "
        "(rate limits counted on every request, TRUSTED_IPS unset), except that the "
        "RATE_LIMIT_* limits are raised to 1000000/minute because all the load comes from "
        "one address. No job worker runs: the jobs writes queue stay queued. Server, wrk and "
        "the harness share the same 2 cores. Write runs are deleted after each point so every "
        "run starts from the same data. CPU is user + system time of the server's process "
        "tree during the measured run; RSS is each worker's at its end.",
        "### Targets",
        _results.verdict_table(
            _results.verdicts(
                rows,
                held.result if held else None,
                held.rss_after if held else [],
                peer_note,
                None,
            )
        )
        + "".join(f"\n{line}" for line in variants.verdict_rows(rows, args.variants))
        + "".join(f"\n{line}" for line in baseline.verdict_rows(rows, run.baseline)),
        "### chainconsult / peer",
        peer_note
        if peer_note
        else "The peer (bench/peer/app.py): FastAPI with Pydantic response models on uvicorn, "
        "slowapi, fastapi-cache2 on Redis, CORSMiddleware and a security-headers middleware, "
        "same database and Redis, same worker count, tokens from its own login.\n\n"
        + _results.ratio_table(_results.ratio_rows(rows, "peer"), "peer"),
        "### Variants (same server, one setting changed)",
        variants.cost_table(rows, args.variants, sink) if args.variants else "none run",
        "### chainconsult / baseline (another commit, same run)",
        baseline.table(rows, run.baseline),
        "### chainconsult / bare route",
        _results.ratio_table(_results.ratio_rows(rows, "bare"), "bare"),
        "### Scenarios",
        _results.scenario_sections(rows),
    ]
    if held is not None:
        o = held.result.options
        parts += [
            "### Held connections",
            f"{o.connections:,} keep-alive connections to `chainconsult serve --workers "
            f"{held.workers}`, opened at {o.ramp_per_second:,.0f} a second, then all held "
            f"for {o.hold_seconds:.0f} s, each sending `GET {o.path}` within "
            f"{o.first_request_within:.0f} s of opening and then "
            f"{o.interval_seconds[0]:.0f}-{o.interval_seconds[1]:.0f} s after each answer, "
            f"with HTTP_KEEP_ALIVE_TIMEOUT={o.keep_alive_seconds or 5} and the same "
            "HTTP_HEADER_TIMEOUT (the default 5 s "
            "would need over 2,000 requests/s from the held connections alone to keep them "
            "open; see bench/load/held.py). Client: bench/load/held.py (asyncio "
            f"on uvloop, same machine); open-file limit raised to {_nofile()}; "
            f"net.core.somaxconn {somaxconn()}, server backlog 2048.",
            _results.held_table(held.result, held.rss_peak, held.rss_after),
        ]
    return "\n\n".join(part for part in parts if part)


def _nofile() -> str:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"{soft:,}"


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every context manager: servers stop


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv, description=__doc__.split("\n\n")[0])
    import shutil

    if shutil.which("wrk") is None:
        sys.exit("load: wrk is not installed (apt-get install -y wrk)")
    signal.signal(signal.SIGTERM, _on_term)
    # The servers inherit the limit: 10,000 sockets each side plus files and pools.
    raise_file_limit(args.held_connections + 4_096)
    progress = Progress()
    machine = _results.Machine()
    work = workdir()
    try:
        progress("starting PostgreSQL and Redis, migrating, loading the demo data")
        with services() as svc:
            env = server_env(svc, work / "var")
            if not svc.demo_loaded:
                prepare_database(env, work / "setup.log")
            # The soak writes for minutes: enough (expert, project) pairs to never repeat one.
            writers = args.writers or (200 if args.soak else 30)
            run = Run(
                args, svc, env, load_fixtures(svc.database_url, writers=writers), work, progress
            )
            if args.soak:
                report = soak.run_soak(run, machine)
                section, after = soak.SECTION, SECTION
            else:
                compared = [s for s in args.baseline_scenarios if s in args.scenarios]
                with baseline.tree(
                    args.baseline,
                    scenarios=compared,
                    env=env,
                    work=work,
                    writers=writers,
                    progress=progress,
                ) as run.baseline:
                    report = _run_bench(run, machine)
                section, after = SECTION, None
    finally:
        remove(work)
    print(report)
    if args.output is not None:
        _results.write_section(args.output, section, report, after=after)
        progress(f"wrote the {section!r} section of {args.output}")
    progress("done")


def _run_bench(run: Run, machine: _results.Machine) -> str:
    args = run.args
    _run_server(run, "chainconsult")
    sink = variants.OtlpSink()
    with sink:
        run.otlp_url = sink.url
        if args.rounds > 1:
            turns.run_in_turns(run)
        else:
            for variant in args.variants:
                _run_server(run, "chainconsult", variant)
    held = None
    if args.held_connections:
        held = run_held(
            run.env,
            HeldOptions(
                connections=args.held_connections,
                hold_seconds=args.held_seconds,
                ramp_per_second=args.held_ramp,
                interval_seconds=args.held_interval,
                keep_alive_seconds=args.held_keep_alive or None,
            ),
            log=run.work / "held.log",
            progress=run.progress,
        )
    if not args.no_bare and run.bare_body is not None:
        _run_bare(run)
    peer_note = None
    if args.no_peer:
        peer_note = "peer skipped (--no-peer)"
    elif not peer_present():
        peer_note = "peer not present (bench/peer/app.py is missing): no peer ratios"
    if peer_note:
        run.progress(peer_note)
    else:
        try:
            _run_server(run, "peer")
        except ServiceError as exc:
            # The points measured so far stay in the report; the note says why the rest are
            # missing.
            peer_note = f"peer failed: {exc}"
            run.progress(peer_note)
    machine.finish()
    return _report(run, machine, held, peer_note, sink)


if __name__ == "__main__":
    main()
