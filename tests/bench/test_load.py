"""The load harness (bench/load, `make bench`): reading wrk's output, rewriting only its own
section of bench/RESULTS.md, and a smoke run of every scenario for a second each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench.load._fixtures import Fixtures, Pair, write_files
from bench.load._results import rewrite_section
from bench.load._scenarios import BY_NAME
from bench.load._wrk import WrkError, duration_ms, parse_wrk

from tests.conftest import missing_service

REPO = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:41234
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    26.31ms   20.12ms 167.10ms   88.31%
    Req/Sec   310.21     60.77   420.00     70.00%
  Latency Distribution
     50%  812.00us
     75%   30.12ms
     90%   45.55ms
     99%    1.20s
  1852 requests in 3.01s, 5.12MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:    615.87
Transfer/sec:      1.70MB
"""
SUMMARY = (
    'BENCH-SUMMARY {"requests": 1852, "duration_us": 3010000, "p50_us": 812, '
    '"p95_us": 60321, "p99_us": 1200456, "max_us": 1500000, "errors": {"connect": 0, '
    '"read": 3, "write": 0, "timeout": 2}, "statuses": {"201": 1848, "409": 3, "503": 1}}\n'
)


def test_wrk_report_gives_rate_latency_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)

    assert result.requests == 1852
    assert result.seconds == pytest.approx(3.01)
    assert result.requests_per_s == pytest.approx(615.87)
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p90_ms == pytest.approx(45.55)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.p95_ms is None
    assert result.socket_errors == {"connect": 0, "read": 3, "write": 0, "timeout": 2}
    assert result.socket_error_count == 5
    assert result.non_2xx == 4


def test_lua_summary_adds_p95_and_counts_per_status() -> None:
    result = parse_wrk(WRK_OUTPUT + SUMMARY)

    assert result.p95_ms == pytest.approx(60.321)
    assert result.p99_ms == pytest.approx(1200.456)
    assert result.max_ms == pytest.approx(1500.0)
    assert result.statuses == {201: 1848, 409: 3, 503: 1}
    # A 409 of a pair sent twice is reported apart; the 503 stays a failure.
    assert result.failures(excused=(409,)) == {503: 1}
    assert result.failures() == {409: 3, 503: 1}


def test_a_run_without_a_report_is_an_error() -> None:
    with pytest.raises(WrkError, match="no result"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(
    ("text", "ms"), [("812.00us", 0.812), ("1.20ms", 1.2), ("2.01s", 2010.0), ("1.00m", 60_000.0)]
)
def test_wrk_durations_in_milliseconds(text: str, ms: float) -> None:
    assert duration_ms(text) == pytest.approx(ms)


RESULTS = """\
# Benchmark results

Intro paragraph.

## Older section

| a | b |
"""


def test_section_is_created_after_the_title_and_the_rest_kept() -> None:
    text = rewrite_section(RESULTS, "make bench", "## New numbers\n\n1 2 3")

    assert text.startswith(
        "# Benchmark results\n\n<!-- make bench: begin -->\n## New numbers\n\n1 2 3\n"
        "<!-- make bench: end -->\n\nIntro paragraph."
    )
    assert text.endswith("## Older section\n\n| a | b |\n")


def test_section_rewrite_replaces_only_its_own_section() -> None:
    first = rewrite_section(RESULTS, "make bench", "old numbers")
    with_soak = rewrite_section(first, "make soak", "soak numbers", after="make bench")
    again = rewrite_section(with_soak, "make bench", "new numbers")

    assert "old numbers" not in again
    assert again.count("<!-- make bench: begin -->") == 1
    assert "<!-- make soak: begin -->\nsoak numbers\n<!-- make soak: end -->" in again
    # The soak's section sits right after the bench's; everything else is untouched.
    assert again.index("make bench: end") < again.index("make soak: begin")
    assert (
        again.replace(
            "<!-- make bench: begin -->\nnew numbers\n<!-- make bench: end -->\n\n"
            "<!-- make soak: begin -->\nsoak numbers\n<!-- make soak: end -->\n\n",
            "",
        )
        == RESULTS
    )


@pytest.mark.slow
@pytest.mark.usefixtures("demo_copies")
def test_smoke_run_of_every_scenario_writes_its_section(
    postgres_server_url: str, redis_url: str, tmp_path: Path
) -> None:
    if shutil.which("wrk") is None:
        missing_service("wrk is not installed (apt-get install -y wrk; .ci/run installs it)")
    results = tmp_path / "RESULTS.md"
    results.write_text(RESULTS)
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": postgres_server_url,
        "BENCH_REDIS_URL": redis_url,
    }
    completed = subprocess.run(
        [
            sys.executable, "-m", "bench.load",
            "--seconds", "1", "--warmup", "0", "--connections", "2", "--writers", "2",
            "--held-connections", "20", "--held-seconds", "1", "--held-interval", "0.2,0.5",
            "--no-peer", "--variants", "info,tracing", "--rounds", "2", "--pin",
            "--output", str(results),
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "load [" in completed.stderr  # progress lines
    text = results.read_text()
    assert text.endswith("## Older section\n\n| a | b |\n")
    section = text[text.index("<!-- make bench: begin -->") : text.index("<!-- make bench: end")]
    for scenario in ("cached_read", "auth_read", "auth_write", "login", "mixed", "bare route"):
        assert f"#### {scenario}" in section
    assert "| chainconsult | 1 | 2 |" in section
    assert "| chainconsult | 2 | 2 |" in section
    assert "| bare | 1 | 2 |" in section
    # The variants, in turns with the default server (two rounds: two points each), and the
    # tracing one's spans arrived.
    assert section.count("| chainconsult+info | 1 | 2 |") == 2
    assert section.count("| chainconsult+tracing | 1 | 2 |") == 2
    assert "The tracing sink received" in section
    assert "peer skipped (--no-peer)" in section
    # Every held connection opened, answered and lasted to the end.
    assert "| 20 | 20 | 20 | 0 | 0 | 0 |" in section


def test_only_the_scenarios_that_send_tokens_make_the_harness_log_in(tmp_path: Path) -> None:
    needing = {name for name, scenario in BY_NAME.items() if scenario.needs_tokens}
    assert needing == {"auth_read", "auth_write", "mixed"}
    fixtures = Fixtures(
        list_paths=["/api/v2/experts"],
        page_paths=["/experts"],
        detail_paths=[],
        readers=["reader@example.com"],
        writers=["writer@example.com"],
        writer_ids=[],
        pairs=[Pair("writer@example.com", "p-1", "100", "USD")],
        login_emails=[],
    )
    # Public reads only: no tokens, and the files of the token scenarios stay empty.
    files = write_files(tmp_path, fixtures, {})
    assert files.pages.read_text() == "/experts\n"
    assert files.tokens.read_text() == ""
    assert files.pairs.read_text() == ""
