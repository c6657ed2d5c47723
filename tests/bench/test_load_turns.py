"""`bench.load --rounds N`: which servers run each point in turns, in what order, pinned where,
and how the medians of the turns make the baseline's ratios. The servers are stand-ins: a
real comparison serves another checkout for minutes (the benchmark's own run)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bench.load import _fixtures, baseline, turns
from bench.load._args import parse_args
from bench.load._fixtures import FixtureFiles, Fixtures
from bench.load._scenarios import Measurement, PointOptions, Progress, figures

from tests.bench.test_load_baseline import _point, _tree


class _Server:
    def __init__(self, env: dict[str, str], workers: int, **_: Any) -> None:
        self.env, self.workers = env, workers
        self.name = "?"
        self.base_url = "http://127.0.0.1:1"
        self.cpus: frozenset[int] | None = None

    @contextlib.contextmanager
    def start(self) -> Iterator[_Server]:
        yield self


def _run_in_turns(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    tree: Any,
    tokens: dict[str, str] | None = None,
) -> tuple[list[tuple[str, str, int, int, bool, bool]], Any]:
    """(scenario, server, workers, turn, server pinned, wrk pinned) of each point measured;
    ``tokens``: the main pass's logins."""
    measured: list[tuple[str, str, int, int, bool, bool]] = []
    logins: list[str] = []

    def log_in(url: str, accounts: list[str]) -> dict[str, str]:
        logins.append(url)
        return {"a@example.com": "token"}

    def measure(scenario: Any, server: Any, *, options: PointOptions, **_: Any) -> Measurement:
        wrk_pinned = options.wrk_cpus == turns.WRK_CPUS
        measured.append(
            (scenario.name, server.name, server.workers, -1, server.cpus is not None, wrk_pinned)
        )
        return _point(scenario.name, server.name, 100)

    monkeypatch.setattr(turns, "chainconsult_server", _Server)
    monkeypatch.setattr(turns, "measure", measure)
    monkeypatch.setattr(_fixtures, "log_in", log_in)
    monkeypatch.setattr(_fixtures, "tokens_valid", lambda url, tokens: True)
    monkeypatch.setattr(turns, "write_files", lambda *a: FixtureFiles(*[tmp_path] * 6))
    args = parse_args(argv)
    run = SimpleNamespace(
        args=args,
        env={"DATABASE_URL": "postgresql://unused/ours"},
        svc=SimpleNamespace(database_url="postgresql://unused/ours"),
        fixtures=Fixtures([], [], [], [], [], [], [], []),
        work=tmp_path,
        otlp_url="http://127.0.0.1:2",
        baseline=tree,
        rows=[],
        point=PointOptions(seconds=1, warmup_seconds=0),
        progress=Progress(),
        tokens=tokens,
        logins=logins,
    )
    turns.run_in_turns(run)  # type: ignore[arg-type]
    # The turn each point was given, from its row.
    return [
        (*point[:3], row.turn, *point[4:]) for point, row in zip(measured, run.rows, strict=True)
    ], run


def test_each_point_runs_on_every_server_that_takes_it_the_first_moving_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["--rounds", "3", "--pin", "--variants", "info", "--baseline", "main~3"]
    argv += ["--connections", "64", "--scenarios", "cached_read,mixed"]
    measured, run = _run_in_turns(
        monkeypatch, tmp_path, argv, _tree(["cached_read", "mixed"]), tokens={"a": "t"}
    )

    cached = [
        (server, turn) for scenario, server, _, turn, _, _ in measured if scenario == "cached_read"
    ]
    assert cached == [
        ("chainconsult", 0), ("chainconsult+info", 0), ("baseline abc1234", 0),
        ("chainconsult+info", 1), ("baseline abc1234", 1), ("chainconsult", 1),
        ("baseline abc1234", 2), ("chainconsult", 2), ("chainconsult+info", 2),
    ]  # fmt: skip
    # The variant runs its scenarios only (cached_read); mixed runs on two workers, unpinned.
    mixed = [(server, turn) for scenario, server, _, turn, _, _ in measured if scenario == "mixed"]
    assert mixed == [
        ("chainconsult", 0), ("baseline abc1234", 0),
        ("baseline abc1234", 1), ("chainconsult", 1),
        ("chainconsult", 2), ("baseline abc1234", 2),
    ]  # fmt: skip
    pins = {
        (scenario, workers, server_pin, wrk_pin)
        for scenario, _, workers, _, server_pin, wrk_pin in measured
    }
    assert pins == {("cached_read", 1, True, True), ("mixed", 2, False, False)}
    # mixed sends tokens: this tree's servers reuse the main pass's logins, the baseline logs in.
    assert len(run.logins) == 1


def test_without_a_baseline_only_the_variants_scenarios_run_in_turns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["--rounds", "2", "--variants", "tracing", "--connections", "64"]
    measured, _ = _run_in_turns(monkeypatch, tmp_path, argv, None)

    assert {(scenario, server) for scenario, server, *_ in measured} == {
        ("cached_read", "chainconsult"),
        ("cached_read", "chainconsult+tracing"),
    }
    assert all(not server_pin and not wrk_pin for *_, server_pin, wrk_pin in measured)


def _turn(
    scenario: str, server: str, rps: float, turn: int | None, cpu: float = 1.0
) -> Measurement:
    point = _point(scenario, server, rps, cpu_seconds=cpu)
    point.turn = turn
    return point


def test_a_point_in_turns_counts_by_medians_and_one_measured_once_as_it_is() -> None:
    rows = [
        # The main pass's point, at another time: left out of the point measured in turns.
        _turn("cached_read", "chainconsult", 5_000, None),
        *(_turn("cached_read", "chainconsult", rps, t) for t, rps in enumerate([900, 1_000, 800])),
        *(
            _turn("cached_read", "baseline abc1234", rps, t, cpu=2.0)
            for t, rps in enumerate([1_100, 990, 1_020])
        ),
        # A point measured once (no turns) counts as it is.
        _turn("auth_read", "chainconsult", 500, None),
    ]  # fmt: skip

    found = figures(rows)

    assert found[("chainconsult", "cached_read", 64)].requests_per_s == 900
    assert found[("baseline abc1234", "cached_read", 64)].requests_per_s == 1_020
    # CPU per request of the median: 1 s over 9,000 requests and 2 s over 10,200 requests.
    assert found[("baseline abc1234", "cached_read", 64)].cpu_ms_per_request == pytest.approx(
        1000 * 2.0 / 10_200
    )
    assert found[("chainconsult", "auth_read", 64)].requests_per_s == 500
    tree = _tree(["cached_read"])
    assert baseline.verdict_rows(rows, tree) == [
        "| cached_read RPS >= 0.95x baseline abc1234 (64 conn.) | 0.88x (900 vs 1,020) | MISS |"
    ]
    assert "Each point ran in 3 turns" in baseline.table(rows, tree)


@pytest.mark.parametrize(("still_valid", "logged_in"), [(True, False), (False, True)])
def test_known_tokens_are_kept_while_they_work_else_the_accounts_log_in(
    monkeypatch: pytest.MonkeyPatch, still_valid: bool, logged_in: bool
) -> None:
    logins: list[str] = []
    monkeypatch.setattr(_fixtures, "tokens_valid", lambda url, tokens: still_valid)
    monkeypatch.setattr(
        _fixtures, "log_in", lambda url, accounts: logins.append(url) or {"b": "fresh"}
    )
    fixtures = Fixtures([], [], [], ["a"], ["b"], [], [], [])

    tokens = _fixtures.working_tokens(
        "http://127.0.0.1:1", fixtures, {"a": "known"}, name="s", progress=lambda _: None
    )

    assert tokens == ({"b": "fresh"} if logged_in else {"a": "known"})
    assert bool(logins) is logged_in
