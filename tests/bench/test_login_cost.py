"""bench/login_cost.py: a short side-by-side run end to end (this tree against itself as the
baseline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import login_cost

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow
@pytest.mark.redis
def test_short_run_prints_loop_cpu_of_a_burst_for_both_trees(
    postgres_server_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    login_cost.main(
        [
            *("--server", postgres_server_url, "--redis", redis_url),
            *("--baseline-src", str(SRC), "--burst", "12", "--rounds", "1"),
        ]
    )

    out = capsys.readouterr().out
    # Each tree's four wrong logins were checked (401), and the burst was answered.
    assert out.count('"admitted": {"401": 4}') == 2
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| tree | ms CPU per admitted wrong login")
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]
    assert [row[0] for row in cells] == ["baseline", "this tree"]
    assert all(float(row[2]) > 0 and float(row[4]) > 0 for row in cells)
