"""bench/page_cost.py: a short side-by-side run end to end (this tree against itself as the
baseline), every read a 200."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import page_cost

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.usefixtures("demo_copies")
def test_short_run_prints_cpu_per_read_of_each_kind_for_both_trees(
    postgres_server_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    page_cost.main(
        [
            *("--server", postgres_server_url, "--redis", redis_url),
            *("--baseline-src", str(SRC), "--requests", "20", "--rounds", "1"),
        ]
    )

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0] == ("| tree | API read µs | page µs | API read, cookie µs | page, cookie µs |")
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]
    assert [row[0] for row in cells] == ["baseline", "this tree"]
    assert all(float(value) > 0 for row in cells for value in row[1:])
