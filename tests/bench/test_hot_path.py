"""bench/hot_path.py: reading wrk's report, the table it prints, and a short run end to end."""

from __future__ import annotations

import shutil

import pytest

from bench import hot_path

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:41253/api/v2/experts?sort=rating
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.09ms    6.01ms  50.60ms   80.00%
    Req/Sec     5.07k   400.00     5.60k    70.00%
  Latency Distribution
     50%   12.09ms
     75%   14.00ms
     90%   18.50ms
     99%    1.20s
  25280 requests in 5.00s, 190.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   5056.00
Transfer/sec:     38.00MB
"""


def test_parse_wrk_reads_rate_percentiles_and_errors() -> None:
    result = hot_path.parse_wrk(WRK_OUTPUT)

    assert result["rps"] == 5056.0
    assert result["requests"] == 25280
    assert result["p50_ms"] == pytest.approx(12.09)
    assert result["p99_ms"] == pytest.approx(1200.0)
    assert result["non_2xx"] == 4
    assert result["socket_errors"] == 5


def test_parse_wrk_refuses_other_output() -> None:
    with pytest.raises(ValueError, match="not wrk output"):
        hot_path.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_table_gives_each_scenario_its_ratio_to_the_bare_route_of_its_server() -> None:
    bare = {"rps": 5000.0, "cpu_us": 130.0, "non_2xx": 0, "socket_errors": 0, "p50_ms": 1.0}
    ours = {"rps": 2000.0, "cpu_us": 350.0, "non_2xx": 1, "socket_errors": 2, "p99_ms": 9.0}
    rows = [
        ("uvicorn", 64, hot_path.SCENARIOS[0].name, bare),
        ("uvicorn", 64, "cached directory read", ours),
        ("granian", 64, "cached directory read", ours),
    ]

    lines = hot_path.table(rows).splitlines()

    assert lines[2].startswith("| uvicorn | 64 | bare FastAPI route, same bytes | 5,000 | 1.00x |")
    assert (
        lines[3]
        == "| uvicorn | 64 | cached directory read | 2,000 | 0.40x | nan | 9.00 | 350 | 3 |"
    )
    assert "| n/a |" in lines[4]


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")
@pytest.mark.usefixtures("demo_copies")
def test_short_run_measures_every_scenario(
    postgres_server_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hot_path.main(
        [
            *("--server", postgres_server_url, "--redis", redis_url),
            *("--connections", "4", "--duration", "1", "--warmup", "0"),
        ]
    )

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| granian")]
    assert [row.split(" | ")[2] for row in rows] == [
        "bare FastAPI route, same bytes",
        "cached directory read",
        "authenticated /auth/me",
    ]
    assert all(row.endswith("| 0 |") for row in rows), rows
