"""The Markdown `make bench` and `make soak` write, and the rewrite of their own sections of
bench/RESULTS.md (between marker comments; the rest of the file is kept as it is)."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.load._scenarios import BY_NAME, SCENARIOS, Measurement
from bench.load.held import HeldResult

RSS_LIMIT_MB = 200.0


def markers(section: str) -> tuple[str, str]:
    return f"<!-- {section}: begin -->", f"<!-- {section}: end -->"


def rewrite_section(text: str, section: str, body: str, *, after: str | None = None) -> str:
    """``text`` with the part between the section's markers replaced by ``body``. A file
    without the section gets it after the section named ``after`` when that one is there,
    else after the title (the first line starting with '# ')."""
    begin, end = markers(section)
    block = f"{begin}\n{body.strip()}\n{end}\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    if after is not None:
        after_end = markers(after)[1]
        index = text.find(after_end)
        if index >= 0:
            cut = index + len(after_end)
            rest = text[cut:].lstrip("\n")
            return text[:cut] + "\n\n" + block + ("\n" + rest if rest else "")
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("# "):
            head = "".join(lines[: index + 1])
            rest = "".join(lines[index + 1 :]).lstrip("\n")
            return head + "\n" + block + ("\n" + rest if rest else "")
    return block + ("\n" + text if text else "")


def write_section(path: Path, section: str, body: str, *, after: str | None = None) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    path.write_text(rewrite_section(text, section, body, after=after))


def command_line(argv: list[str], *, soak: bool) -> str:
    """How a run was started: `make bench` / `make soak`, or the module's command line."""
    shown = shlex.join(argv)
    if shown in ("--output bench/RESULTS.md", "--soak --output bench/RESULTS.md"):
        return "make soak" if soak else "make bench"
    return f".venv/bin/python -m bench.load {shown}".strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1_048_576
    except OSError:
        pass
    return math.nan


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


@dataclass
class Machine:
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)
    load_after: tuple[float, float, float] | None = None

    def finish(self) -> None:
        self.load_after = os.getloadavg()

    def markdown(self, postgres: str, redis: str) -> str:
        after = self.load_after or os.getloadavg()
        return (
            f"Run {self.started:%Y-%m-%d %H:%M} UTC on {_cpu_model()}, {os.cpu_count()} cores, "
            f"{_memory_gib():.0f} GiB, {platform.system()} {platform.release()}. Load average "
            f"(1/5/15 min) {_load(self.load_before)} before, {_load(after)} after (above "
            f"{os.cpu_count()}, the core count, other processes competed for the cores and "
            "the numbers are low).\n\n"
            f"Versions: Python {platform.python_version()}, chainconsult "
            f"{_version('chainconsult')}, granian {_version('granian')} (peer: uvicorn "
            f"{_version('uvicorn')}), FastAPI "
            f"{_version('fastapi')}, PostgreSQL {postgres}, Redis {redis}, "
            f"{_wrk_version()}."
        )


def _load(values: Iterable[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def _wrk_version() -> str:
    import subprocess

    try:
        output = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    except OSError:
        return "wrk missing"
    match = re.search(r"wrk (\S+)", output.stdout + output.stderr)
    return f"wrk {match.group(1)}" if match else "wrk"


def _ms(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1f}"


def _errors(m: Measurement) -> str:
    socket = ", ".join(f"{kind} {n}" for kind, n in m.result.socket_errors.items() if n)
    return socket or "0"


def _non_2xx(m: Measurement) -> str:
    excused = (409,) if m.duplicates else ()
    failures = m.result.failures(excused=excused)
    if not m.result.statuses:
        return str(m.result.non_2xx)
    return ", ".join(f"{count} x {status}" for status, count in failures.items()) or "0"


def measurement_table(rows: list[Measurement]) -> str:
    writes = any(BY_NAME[m.scenario].writes for m in rows if m.scenario in BY_NAME)
    head = (
        "| server | workers | connections | requests/s | p50 ms | p95 ms | p99 ms | non-2xx "
        + ("| 409 duplicate pair " if writes else "")
        + "| socket errors | server CPU ms/request | server CPU % of a core | RSS MB per worker "
        "| load avg |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for m in rows:
        r = m.result
        # No answer within the run (login at high concurrency, short runs): no latency.
        answered = r.requests > 0
        p50, p95, p99 = (r.p50_ms, r.p95_ms, r.p99_ms) if answered else (None, None, None)
        per_request = f"{m.cpu_ms_per_request:.2f}" if answered else "n/a"
        lines.append(
            f"| {m.server} | {m.workers} | {m.connections} | {r.requests_per_s:,.0f} | "
            f"{_ms(p50)} | {_ms(p95)} | {_ms(p99)} | {_non_2xx(m)} | "
            + (f"{m.duplicates} | " if writes else "")
            + f"{_errors(m)} | {per_request} | {m.cpu_percent:.0f} | "
            f"{' / '.join(f'{mb:.0f}' for mb in m.rss_mb)} | {m.load_average:.1f} |"
        )
    return "\n".join(lines)


@dataclass
class Verdict:
    target: str
    measured: str
    passed: bool | None
    """None: not measured in this run."""

    def row(self) -> str:
        mark = {True: "PASS", False: "MISS", None: "not measured"}[self.passed]
        return f"| {self.target} | {self.measured} | {mark} |"


def _find(rows: list[Measurement], scenario: str, server: str, c: int) -> Measurement | None:
    for m in rows:
        if (m.scenario, m.server, m.connections) == (scenario, server, c):
            return m
    return None


def ratio_rows(rows: list[Measurement], other: str) -> list[tuple[str, int, float, float]]:
    """(scenario, connections, chainconsult RPS, other RPS) for every point both ran; against
    the bare route only `cached_read` compares."""
    out = []
    for m in rows:
        if m.server != "chainconsult" or (other == "bare" and m.scenario != "cached_read"):
            continue
        if m.turn is not None:
            continue  # a point in turns (turns.py): the peer and bare compare the main pass
        theirs = _find(rows, "bare" if other == "bare" else m.scenario, other, m.connections)
        if theirs is not None:
            out.append(
                (m.scenario, m.connections, m.result.requests_per_s, theirs.result.requests_per_s)
            )
    return out


def verdicts(
    rows: list[Measurement],
    held: HeldResult | None,
    held_rss: list[float],
    peer_note: str | None,
    soak_growth: float | None,
) -> list[Verdict]:
    out: list[Verdict] = []
    peer = ratio_rows(rows, "peer")
    for scenario, c, ours, theirs in peer:
        if scenario == "cached_read":
            ratio = ours / theirs if theirs else math.inf
            out.append(
                Verdict(f"cached read >= 5x peer RPS ({c} conn.)", f"{ratio:.2f}x", ratio >= 5)
            )
    if not peer:
        out.append(Verdict("cached read >= 5x peer RPS", peer_note or "no peer run", None))
    bare = ratio_rows(rows, "bare")
    for _, c, ours, theirs in bare:
        ratio = ours / theirs if theirs else math.inf
        out.append(Verdict(f"cached read >= 0.4x bare ({c} conn.)", f"{ratio:.2f}x", ratio >= 0.4))
    if not bare:
        out.append(Verdict("cached read >= 0.4x bare", "no bare run", None))
    for c, limit in ((64, 20.0), (256, 50.0)):
        m = _find(rows, "cached_read", "chainconsult", c)
        out.append(
            Verdict(
                f"cached read p99 < {limit:.0f} ms at {c} conn.",
                f"{m.result.p99_ms:.1f} ms" if m else "not run",
                m.result.p99_ms < limit if m else None,
            )
        )
    out += _page_verdicts(rows)
    if held is not None:
        out.append(
            Verdict(
                f"{held.options.connections:,} connections held with 0 errors",
                f"{held.errors} errors, {held.held_to_end:,} held to the end",
                held.errors == 0 and held.held_to_end == held.options.connections,
            )
        )
        out.append(
            Verdict(
                f"worker RSS < {RSS_LIMIT_MB:.0f} MB after the held connections",
                " / ".join(f"{mb:.0f} MB" for mb in held_rss) or "n/a",
                bool(held_rss) and max(held_rss) < RSS_LIMIT_MB,
            )
        )
    else:
        out.append(Verdict("10,000 connections held with 0 errors", "not run", None))
    out.append(
        Verdict(
            "soak: worker RSS growth < 5 % over 5 minutes",
            f"{soak_growth:+.1f} %" if soak_growth is not None else "`make soak` (own section)",
            soak_growth < 5 if soak_growth is not None else None,
        )
    )
    for m in rows:
        if m.scenario == "mixed" and m.server == "chainconsult":
            r = m.result
            out.append(
                Verdict(
                    f"mixed >= 5,000 RPS with p99 < 100 ms ({m.connections} conn.)",
                    f"{r.requests_per_s:,.0f} RPS, p99 {r.p99_ms:.1f} ms",
                    r.requests_per_s >= 5000 and r.p99_ms < 100,
                )
            )
    return out


def _page_verdicts(rows: list[Measurement]) -> list[Verdict]:
    """The anonymous directory page: as fast as a cached read in latency, and at least half
    its throughput, in the same run."""
    page = _find(rows, "page_read", "chainconsult", 64)
    read = _find(rows, "cached_read", "chainconsult", 64)
    ratio = (
        page.result.requests_per_s / read.result.requests_per_s
        if page and read and read.result.requests_per_s
        else None
    )
    return [
        Verdict(
            "directory page p99 < 30 ms at 64 conn.",
            f"{page.result.p99_ms:.1f} ms" if page else "not run",
            page.result.p99_ms < 30 if page else None,
        ),
        Verdict(
            "directory page >= 0.5x cached read RPS (64 conn.)",
            f"{ratio:.2f}x" if ratio is not None else "not run",
            ratio >= 0.5 if ratio is not None else None,
        ),
    ]


def verdict_table(items: list[Verdict]) -> str:
    return "\n".join(
        ["| target | measured | verdict |", "|---|---|---|"] + [v.row() for v in items]
    )


def ratio_table(rows: list[tuple[str, int, float, float]], other: str) -> str:
    lines = [
        f"| scenario | connections | chainconsult RPS | {other} RPS | chainconsult / {other} |",
        "|---|---|---|---|---|",
    ]
    for scenario, c, ours, theirs in rows:
        ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
        lines.append(f"| {scenario} | {c} | {ours:,.0f} | {theirs:,.0f} | {ratio} |")
    return "\n".join(lines)


def held_table(held: HeldResult, rss_peak: list[float], rss_after: list[float]) -> str:
    o = held.options
    connect = ", ".join(f"{kind} {n}" for kind, n in held.connect_errors.items()) or "0"
    request = ", ".join(f"{kind} {n}" for kind, n in held.request_errors.items()) or "0"
    non_2xx = (
        ", ".join(f"{n} x {status}" for status, n in sorted(held.statuses.items()) if status >= 300)
        or "0"
    )
    return "\n".join(
        [
            "| connections | opened | held to the end | connect errors | resets, closes, "
            "timeouts | non-2xx | requests | p50 ms | p95 ms | p99 ms | max ms | RSS MB per "
            "worker, peak | RSS MB per worker, after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {o.connections:,} | {held.opened:,} | {held.held_to_end:,} | {connect} | "
            f"{request} | {non_2xx} | {len(held.latencies_ms):,} | {_ms(held.percentile(50))} | "
            f"{_ms(held.percentile(95))} | {_ms(held.percentile(99))} | "
            f"{_ms(max(held.latencies_ms, default=math.nan))} | "
            f"{' / '.join(f'{mb:.0f}' for mb in rss_peak)} | "
            f"{' / '.join(f'{mb:.0f}' for mb in rss_after)} |",
        ]
    )


def scenario_sections(rows: list[Measurement]) -> str:
    parts = []
    for scenario in SCENARIOS:
        mine = [m for m in rows if m.scenario == scenario.name]
        if not mine:
            continue
        commands = list(dict.fromkeys(m.command for m in mine))  # in the order they ran
        parts.append(
            f"#### {scenario.name}\n\n{scenario.what}.\n\n"
            + "\n".join(f"    {command}" for command in commands)
            + "\n\n"
            + measurement_table(mine)
        )
    bare = [m for m in rows if m.scenario == "bare"]
    if bare:
        parts.append(
            "#### bare route\n\nOne FastAPI route returning the bytes of the cached "
            "`GET /api/v2/experts` response (bench/load/bare.py), same granian options, one "
            "worker.\n\n"
            + "\n".join(f"    {command}" for command in dict.fromkeys(m.command for m in bare))
            + "\n\n"
            + measurement_table(bare)
        )
    return "\n\n".join(parts)
