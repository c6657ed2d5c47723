"""`bench.load`'s variants (one setting changed, side by side with the default server): their
cost from single points, and from the medians of a comparison in turns (--rounds)."""

from __future__ import annotations

import pytest
from bench.load import variants
from bench.load._args import parse_args
from bench.load._scenarios import Measurement
from bench.load._wrk import WrkRun

from tests.bench.test_load_baseline import _point

INFO, TRACING = variants.VARIANTS["info"], variants.VARIANTS["tracing"]


def _turn(server: str, rps: float, turn: int) -> Measurement:
    point = _point("cached_read", server, rps)
    point.turn = turn
    return point


def test_a_single_point_per_server_gives_the_cost() -> None:
    rows = [_point("cached_read", "chainconsult", 100), _point("cached_read", INFO.server, 92)]

    [(variant, scenario, connections, ours, theirs)] = variants.cost_rows(rows, [INFO])

    assert (variant, scenario, connections, ours, theirs) == (INFO, "cached_read", 64, 100, 92)
    assert variants.cost_percent(ours, theirs) == pytest.approx(8.0)


def test_in_turns_each_server_counts_by_its_median_and_the_main_pass_is_left_out() -> None:
    rows = [
        # The main pass's default point, measured at another time: not part of the comparison.
        _point("cached_read", "chainconsult", 1_000),
        *(_turn("chainconsult", rps, turn) for turn, rps in enumerate([100, 130, 110])),
        *(_turn(INFO.server, rps, turn) for turn, rps in enumerate([60, 104, 99])),
        *(_turn(TRACING.server, rps, turn) for turn, rps in enumerate([88, 90, 200])),
    ]

    costs = {
        v.name: (ours, theirs)
        for v, _, _, ours, theirs in variants.cost_rows(rows, [INFO, TRACING])
    }

    assert costs == {"info": (110, 99), "tracing": (110, 90)}


@pytest.mark.parametrize("argv", [["--pin"], ["--pin", "--rounds", "1"]])
def test_pinning_is_for_the_turns_only(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_turns_are_off_unless_asked() -> None:
    args = parse_args([])
    assert (args.rounds, args.pin) == (1, False)
    args = parse_args(["--rounds", "5", "--pin"])
    assert (args.rounds, args.pin) == (5, True)


def test_a_pinned_point_runs_wrk_through_taskset_on_its_cpus() -> None:
    free = WrkRun("http://127.0.0.1:1", "cached_read", 2, 1)
    pinned = WrkRun("http://127.0.0.1:1", "cached_read", 2, 1, cpus=frozenset({1}))

    assert free.command()[0] == "wrk"
    assert pinned.command() == ["taskset", "--cpu-list", "1", *free.command()]
