"""`bench.load --baseline REV`: its options, the order of each point's two runs and the
ratios it reports. Serving a real checkout takes minutes (a virtualenv, a database): that is
the benchmark's own run, not a test."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.load import baseline
from bench.load._args import parse_args
from bench.load._fixtures import FixtureFiles, Fixtures
from bench.load._scenarios import BY_NAME, Measurement, PointOptions, Progress
from bench.load._servers import Server
from bench.load._wrk import WrkResult


def _tree(scenarios: list[str]) -> baseline.BaselineTree:
    fixtures = Fixtures([], [], [], [], [], [], [], [])
    return baseline.BaselineTree(
        rev="main~3",
        commit="abc1234",
        path=Path("unused"),
        python="python",
        own_venv=True,
        env={"DATABASE_URL": "postgresql://unused/db"},
        scenarios=scenarios,
        fixtures=fixtures,
    )


def _point(scenario: str, server: str, rps: float, cpu_seconds: float = 1.0) -> Measurement:
    result = WrkResult(
        requests=int(rps * 10), seconds=10, requests_per_s=rps, p50_ms=1, p90_ms=2, p99_ms=3
    )
    return Measurement(
        scenario=scenario,
        server=server,
        connections=64,
        workers=1,
        result=result,
        cpu_seconds=cpu_seconds,
        wall_seconds=10,
        rss_mb=[100.0],
        command="wrk",
        load_average=1.0,
    )


def test_baseline_is_off_unless_asked_and_compares_cached_read_and_mixed() -> None:
    assert parse_args([]).baseline is None
    args = parse_args(["--baseline", "main~3"])
    assert args.baseline == "main~3"
    assert args.baseline_scenarios == ["cached_read", "mixed"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--baseline", "main~3", "--baseline-scenarios", "cached_read,nope"],
        ["--baseline", "main~3", "--soak"],
    ],
)
def test_baseline_refuses_unknown_scenarios_and_the_soak(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_each_point_runs_on_both_servers_the_first_alternating(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    order: list[str] = []

    def theirs(*args: object, **kwargs: object) -> Measurement:
        order.append("baseline")
        return _point("cached_read", "baseline abc1234", 100)

    def ours() -> Measurement:
        order.append("ours")
        return _point("cached_read", "chainconsult", 100)

    monkeypatch.setattr(baseline, "measure", theirs)
    server = Server("baseline abc1234", [], env={}, workers=1, port=1, log=tmp_path, ready_path="")
    files = FixtureFiles(*(tmp_path / name for name in "abcdef"))
    side = baseline.Side(_tree(["cached_read"]), server, files)

    def point(scenario: str) -> list[str]:
        rows = side.beside(
            ours, BY_NAME[scenario], 64, options=PointOptions(1, 0), progress=Progress()
        )
        return [m.server for m in rows]

    assert point("cached_read") == ["chainconsult", "baseline abc1234"]
    assert point("cached_read") == ["chainconsult", "baseline abc1234"]
    # A scenario the baseline does not run: this tree's point alone.
    assert point("auth_read") == ["chainconsult"]
    assert order == ["ours", "baseline", "baseline", "ours", "ours"]


def test_targets_hold_this_tree_within_five_percent_of_the_baseline() -> None:
    tree = _tree(["cached_read", "mixed"])
    rows = [
        _point("cached_read", "chainconsult", 1_000, cpu_seconds=1.0),
        _point("cached_read", "baseline abc1234", 1_040, cpu_seconds=1.1),
        _point("mixed", "chainconsult", 900),
        _point("mixed", "baseline abc1234", 1_000),
        # Points the baseline did not run are not compared.
        _point("auth_read", "chainconsult", 500),
        _point("cached_read", "chainconsult+info", 950),
    ]

    assert baseline.verdict_rows(rows, tree) == [
        "| cached_read RPS >= 0.95x baseline abc1234 (64 conn.) | 0.96x (1,000 vs 1,040) | PASS |",
        "| mixed RPS >= 0.95x baseline abc1234 (64 conn.) | 0.90x (900 vs 1,000) | MISS |",
    ]
    table = baseline.table(rows, tree)
    assert "`main~3` = commit abc1234" in table
    assert "| cached_read | 64 | 1,000 | 1,040 | 0.96x | 0.100 | 0.106 | 0.95x |" in table
    assert "auth_read" not in table
    assert baseline.verdict_rows(rows, None) == []
    assert "none run" in baseline.table(rows, None)
