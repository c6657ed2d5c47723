"""`soak` (`make soak`): mixed traffic for 5 minutes on `chainconsult serve --workers 2`, each
worker's RSS sampled every few seconds; the growth from the end of the warm-up to the end of
the run says whether memory leaks (target: under 5 %)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.load import _results
from bench.load._fixtures import database_now, log_in, remove_writes, write_files
from bench.load._scenarios import BY_NAME, Measurement, PointOptions, measure
from bench.load._servers import RssSampler, Sample, chainconsult_server
from bench.load._wrk import WrkRun

if TYPE_CHECKING:
    from bench.load.__main__ import Run

SECTION = "make soak"
GROWTH_LIMIT_PERCENT = 5.0


def growth_percent(samples: list[Sample]) -> list[float]:
    """Per worker: RSS at the last sample against the first, in %."""
    if len(samples) < 2:
        return []
    first, last = samples[0].rss_mb, samples[-1].rss_mb
    return [100 * (b - a) / a for a, b in zip(first, last, strict=False) if a > 0]


def run_soak(run: Run, machine: _results.Machine) -> str:
    args = run.args
    scenario = BY_NAME["mixed"]
    with chainconsult_server(run.env, workers=2, log=run.work / "soak.log") as server:
        run.progress("starting chainconsult with 2 workers for the soak")
        server.start()
        accounts = run.fixtures.readers + run.fixtures.writers
        run.progress(f"logging {len(set(accounts))} demo accounts in")
        files = write_files(run.work / "soak", run.fixtures, log_in(server.base_url, accounts))
        since = database_now(run.svc.database_url)
        run.progress(f"soak warm-up: {args.soak_warmup} s of mixed traffic")
        threads = min(2, args.soak_connections)
        WrkRun(
            server.base_url,
            "mixed",
            args.soak_connections,
            args.soak_warmup,
            scenario.args(files, threads),
            threads=threads,
        ).run()
        server.wait_idle()  # no write of the warm-up commits after the delete
        remove_writes(run.svc.database_url, run.fixtures, since)
        sampler = RssSampler(server, every_seconds=5.0).start()
        measured = measure(
            scenario,
            server,
            connections=args.soak_connections,
            files=files,
            fixtures=run.fixtures,
            database_url=run.svc.database_url,
            options=PointOptions(seconds=args.soak_seconds, warmup_seconds=0),
            progress=run.progress,
        )
        sampler.stop()
    machine.finish()
    return _report(run, machine, measured, sampler.samples)


def _report(
    run: Run, machine: _results.Machine, measured: Measurement, samples: list[Sample]
) -> str:
    args = run.args
    growth = growth_percent(samples)
    worst = max(growth, default=float("nan"))
    every = max(1, len(samples) // 10)
    shown = samples[::every] + ([samples[-1]] if (len(samples) - 1) % every else [])
    series = ["| s | RSS MB per worker |", "|---|---|"] + [
        f"| {sample.seconds:.0f} | {' / '.join(f'{mb:.1f}' for mb in sample.rss_mb)} |"
        for sample in shown
    ]
    verdict = _results.Verdict(
        f"worker RSS growth < {GROWTH_LIMIT_PERCENT:.0f} % from the end of warm-up to the end",
        " / ".join(f"{value:+.2f} %" for value in growth) or "n/a",
        bool(growth) and worst < GROWTH_LIMIT_PERCENT,
    )
    mixed = measured.result
    return "\n\n".join(
        [
            f"## Soak: {args.soak_seconds / 60:g} minutes of mixed traffic (`make soak`, issue 10)",
            machine.markdown(run.svc.postgres_version, run.svc.redis_version),
            f"Command: `{_results.command_line(args.argv, soak=True)}`: `chainconsult serve "
            "--workers 2` (set-up as in `make bench`), "
            f"{args.soak_warmup} s warm-up of the `mixed` scenario, then {args.soak_seconds} s "
            f"of it at {args.soak_connections} connections with each worker's RSS sampled "
            "every 5 s.",
            "    " + measured.command,
            _results.verdict_table([verdict]),
            _results.measurement_table([measured]),
            f"Mixed traffic over the soak: {mixed.requests:,} requests, "
            f"{mixed.requests_per_s:,.0f} requests/s.",
            "\n".join(series),
        ]
    )
