"""``--rounds N``: the default server, each variant's (LOG_LEVEL=INFO, tracing) and the
baseline commit's all run at once and are measured in turns, N rounds per point, the first
server moving on by one each round. A shared machine's drift, and whatever favours a server
measured earlier or later, then fall on each server alike; costs and ratios come from each
server's median (_scenarios.figures).

With ``--pin`` the servers of the one-worker scenarios run on CPU 0 and wrk on CPU 1, so the
two no longer trade cores from point to point; two-worker servers (``mixed``) need both
cores and run unpinned."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.load._fixtures import FixtureFiles, Fixtures, working_tokens, write_files
from bench.load._scenarios import SCENARIOS, Scenario, measure
from bench.load._servers import Server, chainconsult_server

if TYPE_CHECKING:
    from bench.load.__main__ import Run

SERVER_CPUS = frozenset({0})
WRK_CPUS = frozenset({1})


@dataclass
class Contender:
    """One server of the turns, with the data its points read and write."""

    server: Server
    scenarios: set[str]
    fixtures: Fixtures
    database_url: str
    files: FixtureFiles | None = None


def _contenders(run: Run, workers: int, scenarios: list[Scenario]) -> list[Contender]:
    args, names = run.args, {s.name for s in scenarios}
    out = []
    for variant in [None, *args.variants]:
        chosen = names & set(args.variant_scenarios) if variant else names
        if not chosen:
            continue
        name = variant.server if variant else "chainconsult"
        server = chainconsult_server(run.env, workers=workers, log=run.work / f"{name}-turns.log")
        server.name = name
        if variant is not None:
            server.env = variant.server_env(run.env, run.otlp_url)
        out.append(Contender(server, chosen, run.fixtures, run.svc.database_url))
    tree = run.baseline
    if tree is not None and tree.fixtures is not None and names & set(tree.scenarios):
        server = chainconsult_server(
            tree.env,
            workers=workers,
            log=run.work / f"baseline-{workers}-turns.log",
            python=tree.python,
            cwd=tree.path,
        )
        server.name = tree.name
        out.append(Contender(server, names & set(tree.scenarios), tree.fixtures, tree.database_url))
    return out


def _log_in(run: Run, contenders: list[Contender], scenarios: list[Scenario]) -> None:
    """Each database's demo accounts logged in once: this tree's servers share one database,
    and the main pass's logins, while they work; the baseline has a database of its own."""
    known = {run.svc.database_url: run.tokens} if run.tokens else {}
    for contender in contenders:
        tokens: dict[str, str] = {}
        if any(s.needs_tokens for s in scenarios if s.name in contender.scenarios):
            database = contender.database_url
            tokens = known[database] = working_tokens(
                contender.server.base_url,
                contender.fixtures,
                known.get(database),
                name=contender.server.name,
                progress=run.progress,
            )
        folder = run.work / f"turns-{contender.server.name.replace(' ', '-')}"
        contender.files = write_files(folder, contender.fixtures, tokens)


def run_in_turns(run: Run) -> None:
    """The variants' and the baseline's scenarios, each point in ``args.rounds`` turns."""
    args = run.args
    chosen = set(args.variant_scenarios if args.variants else ())
    if run.baseline is not None:
        chosen |= set(run.baseline.scenarios)
    scenarios = [s for s in SCENARIOS if s.name in chosen and s.name in args.scenarios]
    for workers in sorted({s.workers for s in scenarios}):
        group = [s for s in scenarios if s.workers == workers]
        pin = args.pin and workers == 1
        contenders = _contenders(run, workers, group)
        options = dataclasses.replace(run.point, wrk_cpus=WRK_CPUS if pin else None)
        with contextlib.ExitStack() as stack:
            for contender in contenders:
                contender.server.cpus = SERVER_CPUS if pin else None
                run.progress(
                    f"starting {contender.server.name} with {workers} worker(s) for the turns"
                )
                stack.enter_context(contender.server.start())
            _log_in(run, contenders, group)
            for scenario in group:
                taking = [c for c in contenders if scenario.name in c.scenarios]
                for connections in args.connections:
                    for turn in range(args.rounds):
                        first = turn % len(taking)
                        for contender in taking[first:] + taking[:first]:
                            assert contender.files is not None
                            row = measure(
                                scenario,
                                contender.server,
                                connections=connections,
                                files=contender.files,
                                fixtures=contender.fixtures,
                                database_url=contender.database_url,
                                options=options,
                                progress=run.progress,
                            )
                            row.turn = turn
                            run.rows.append(row)
