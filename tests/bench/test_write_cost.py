"""bench/write_cost.py: a short side-by-side run end to end (this tree against itself as the
baseline), every proposal a 201."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import write_cost

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.usefixtures("demo_copies")
def test_short_run_prints_cpu_per_proposal_for_both_trees(
    postgres_server_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_cost.main(
        [
            *("--server", postgres_server_url, "--redis", redis_url),
            *("--baseline-src", str(SRC), "--proposals", "5", "--rounds", "1"),
        ]
    )

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0] == "| tree | ms CPU per proposal, each round | median |"
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]
    assert [label for label, _, _ in cells] == ["baseline", "this tree"]
    assert all(float(median) > 0 for _, _, median in cells)
