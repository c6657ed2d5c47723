"""``--baseline REV``: another commit of this repository served beside this tree in the same
run, for the scenarios issue 20 compares (cached read and mixed throughput against the main
of its day).

REV is checked out into a temporary git worktree. It runs on this tree's virtualenv when its
constraints.txt is the same as ours, else on one of its own (``python -m venv`` and ``pip
install -c constraints.txt -e .``, from the machine's package index configuration as ``make
install`` does). It gets its own database on the same PostgreSQL, migrated and filled with the
demo data by its own code, its own Redis key prefix and data directory, and is started as
``chainconsult serve`` with this run's environment. Each point is measured on both servers one
after the other, the order alternating from point to point so that the machine's drift does not
favour either; with ``--rounds N`` the baseline's server joins the turns instead
(bench/load/turns.py). The worktree and the database are removed at the end, failures included."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from bench.chaos._services import ServiceError
from bench.chaos._stack import run_cli
from bench.load._fixtures import (
    FixtureFiles,
    Fixtures,
    load_fixtures,
    working_tokens,
    write_files,
)
from bench.load._scenarios import (
    Figure,
    Measurement,
    PointOptions,
    Progress,
    Scenario,
    figures,
    measure,
)
from bench.load._servers import REPO_ROOT, Server, chainconsult_server
from psycopg import sql
from sqlalchemy.engine import make_url

MIN_RATIO = 0.95
"""Issue 20: this tree's throughput within 5 % of the baseline's, or better."""


@dataclass
class BaselineTree:
    """REV ready to serve: its checkout, the interpreter that runs it, its environment."""

    rev: str
    commit: str
    path: Path
    python: str
    own_venv: bool
    env: dict[str, str]
    scenarios: list[str]
    fixtures: Fixtures | None = None
    tokens: dict[str, str] | None = None
    points: int = 0
    """Points measured so far: their parity decides which server goes first."""

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def name(self) -> str:
        return f"baseline {self.commit}"


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ServiceError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _install(path: Path, log: Path) -> str:
    """A virtualenv of the tree's own, with its pinned dependencies; returns its python."""
    venv = path / ".venv"
    with log.open("ab") as out:
        for command in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--quiet", "-c", "constraints.txt", "-e", "."],
        ):
            if subprocess.run(command, cwd=path, stdout=out, stderr=out, check=False).returncode:
                raise ServiceError(f"{' '.join(command[:3])} failed for the baseline; see {log}")
    return str(venv / "bin" / "python")


def _constraints(path: Path) -> str | None:
    file = path / "constraints.txt"
    return file.read_text() if file.is_file() else None


@contextlib.contextmanager
def _database(server_url: str) -> Iterator[str]:
    """A fresh database on the server of ``server_url``, dropped at the end."""
    name = f"cc_base_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server_url).set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def tree(
    rev: str | None,
    *,
    scenarios: list[str],
    env: dict[str, str],
    work: Path,
    writers: int,
    progress: Progress,
) -> Iterator[BaselineTree | None]:
    """REV checked out, installed, migrated and filled with its demo data (None: no REV)."""
    if rev is None:
        yield None
        return
    commit = _git("rev-parse", "--verify", "--short", f"{rev}^{{commit}}")
    path = work / f"baseline-{commit}"
    progress(f"baseline {commit}: checking out into a git worktree")
    try:
        _git("worktree", "add", "--detach", str(path), commit)
        log = work / "baseline-setup.log"
        own_venv = _constraints(path) != _constraints(REPO_ROOT)
        if own_venv:
            progress(f"baseline {commit}: its constraints.txt differs; installing a virtualenv")
        python = _install(path, log) if own_venv else sys.executable
        with _database(env["DATABASE_URL"]) as database_url:
            their_env = {
                **env,
                "DATABASE_URL": database_url,
                "REDIS_KEY_PREFIX": f"ccbase-{secrets.token_hex(4)}",
                "CHAINCONSULT_DATA_DIR": str(work / "var-baseline"),
            }
            if not own_venv:
                # This tree's virtualenv, REV's package found first.
                their_env["PYTHONPATH"] = os.pathsep.join(
                    filter(None, [str(path / "src"), env.get("PYTHONPATH")])
                )
            found = BaselineTree(rev, commit, path, python, own_venv, their_env, scenarios)
            progress(f"baseline {commit}: migrating and loading the demo data with its code")
            for command in ("migrate", "demo-data"):
                run_cli(their_env, command, log=log, python=python, cwd=path)
            found.fixtures = load_fixtures(database_url, writers=writers)
            yield found
    finally:
        # Quietly: an error here must not hide the one that ended the run.
        with contextlib.suppress(ServiceError):
            _git("worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(ServiceError):
            _git("worktree", "prune")


@dataclass
class Side:
    """The baseline's server for one worker count, with the files its scripts read."""

    tree: BaselineTree
    server: Server
    files: FixtureFiles

    def beside(
        self,
        ours: Callable[[], Measurement],
        scenario: Scenario,
        connections: int,
        *,
        options: PointOptions,
        progress: Progress,
    ) -> list[Measurement]:
        """This tree's point (``ours``) and the baseline's, one after the other, the first
        server alternating from point to point; this tree's row first in the result."""
        if scenario.name not in self.tree.scenarios:
            return [ours()]
        fixtures = self.tree.fixtures
        assert fixtures is not None

        def theirs() -> Measurement:
            return measure(
                scenario,
                self.server,
                connections=connections,
                files=self.files,
                fixtures=fixtures,
                database_url=self.tree.database_url,
                options=options,
                progress=progress,
            )

        self.tree.points += 1
        if self.tree.points % 2:
            first = ours()
            return [first, theirs()]
        second = theirs()
        return [ours(), second]


@contextlib.contextmanager
def side(
    found: BaselineTree | None,
    scenarios: list[Scenario],
    *,
    workers: int,
    work: Path,
    progress: Progress,
) -> Iterator[Side | None]:
    """The baseline served with ``workers`` workers while this tree's server of the same
    count runs its scenarios (None when none of them is compared)."""
    chosen = [s for s in scenarios if found is not None and s.name in found.scenarios]
    if found is None or found.fixtures is None or not chosen:
        yield None
        return
    log = work / f"baseline-{workers}.log"
    server = chainconsult_server(
        found.env, workers=workers, log=log, python=found.python, cwd=found.path
    )
    server.name = found.name
    progress(f"starting {found.name} with {workers} worker(s)")
    with server.start():
        tokens: dict[str, str] = {}
        if any(s.needs_tokens for s in chosen):
            found.tokens = working_tokens(
                server.base_url, found.fixtures, found.tokens, name=found.name, progress=progress
            )
            tokens = found.tokens
        files = write_files(work / "baseline", found.fixtures, tokens)
        yield Side(found, server, files)


def ratio_rows(
    rows: list[Measurement], found: BaselineTree
) -> list[tuple[str, int, Figure, Figure]]:
    """(scenario, connections, this tree's figure, the baseline's) for every point both ran,
    in the order first run; measured in turns (--rounds), each server's median."""
    figure = figures(rows)
    points = dict.fromkeys((m.scenario, m.connections) for m in rows if m.server == "chainconsult")
    return [
        (scenario, connections, figure[ours], figure[theirs])
        for scenario, connections in points
        if (ours := ("chainconsult", scenario, connections)) in figure
        and (theirs := (found.name, scenario, connections)) in figure
    ]


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("inf")


def verdict_rows(rows: list[Measurement], found: BaselineTree | None) -> list[str]:
    """Rows of the report's target table, in its `| target | measured | verdict |` form."""
    if found is None:
        return []
    lines = []
    for scenario, connections, ours, theirs in ratio_rows(rows, found):
        a, b = ours.requests_per_s, theirs.requests_per_s
        ratio = _ratio(a, b)
        lines.append(
            f"| {scenario} RPS >= {MIN_RATIO:.2f}x {found.name} ({connections} "
            f"conn.) | {ratio:.2f}x ({a:,.0f} vs {b:,.0f}) | "
            f"{'PASS' if ratio >= MIN_RATIO else 'MISS'} |"
        )
    return lines


def _order(rows: list[Measurement], found: BaselineTree) -> str:
    turns = {m.turn for m in rows if m.server == found.name and m.turn is not None}
    if turns:
        return (
            f"Each point ran in {len(turns)} turns with every server of its worker count "
            "running (--rounds), the first server moving on each turn; figures are each "
            "server's medians."
        )
    return (
        "Each point ran on both servers one after the other, the first of the two "
        "alternating from point to point."
    )


def table(rows: list[Measurement], found: BaselineTree | None) -> str:
    if found is None:
        return "none run (`--baseline REV` serves another commit beside this tree)"
    venv = (
        "a virtualenv of its own (its constraints.txt differs from ours)"
        if found.own_venv
        else "this tree's virtualenv (the same constraints.txt), its package first on the path"
    )
    lines = [
        f"Baseline: `{found.rev}` = commit {found.commit}, checked out into a temporary git "
        f"worktree, on {venv}; its own database on the same PostgreSQL (`migrate` + "
        "`demo-data` by its own code) and its own Redis key prefix; `chainconsult serve` with "
        f"this run's environment and worker count. {_order(rows, found)}",
        "",
        f"| scenario | connections | chainconsult RPS | {found.name} RPS | ratio | "
        f"chainconsult CPU ms/request | {found.name} CPU ms/request | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario, connections, ours, theirs in ratio_rows(rows, found):
        a, b = ours.requests_per_s, theirs.requests_per_s
        x, y = ours.cpu_ms_per_request, theirs.cpu_ms_per_request
        lines.append(
            f"| {scenario} | {connections} | {a:,.0f} | {b:,.0f} | "
            f"{_ratio(a, b):.2f}x | {x:.3f} | {y:.3f} | {_ratio(x, y):.2f}x |"
        )
    return "\n".join(lines)
