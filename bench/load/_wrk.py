"""Running wrk and reading what it prints: its own report (requests/s, the latency
distribution of `--latency`, socket errors, non-2xx) and the BENCH-SUMMARY line our Lua
scripts add (p95, which wrk does not print, and the count of each response status)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA_DIR = Path(__file__).parent / "lua"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class WrkError(RuntimeError):
    """wrk failed or printed no result."""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p95_ms: float | None = None
    max_ms: float | None = None
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    """Responses per HTTP status (from the Lua summary; empty without it)."""

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(status, 0) for status in statuses)

    def failures(self, *, excused: tuple[int, ...] = ()) -> dict[int, int]:
        """Non-2xx responses by status, leaving out ``excused`` ones (reported apart)."""
        return {
            status: count
            for status, count in sorted(self.statuses.items())
            if not 200 <= status < 300 and status not in excused
        }


def duration_ms(value: str) -> float:
    """wrk's '812.00us', '1.20ms', '2.01s' or '1.00m' in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if match is None:
        raise WrkError(f"unreadable wrk duration {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The numbers of one wrk run (`--latency`), with the BENCH-SUMMARY line when present."""
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in ([\d.]+\w+),", output, re.MULTILINE)
    if rps is None or total is None or set(percentiles) != {"50", "75", "90", "99"}:
        raise WrkError(f"wrk printed no result:\n{output[-2000:]}")
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result = WrkResult(
        requests=int(total.group(1)),
        seconds=duration_ms(total.group(2)) / 1000,
        requests_per_s=float(rps.group(1)),
        p50_ms=duration_ms(percentiles["50"]),
        p90_ms=duration_ms(percentiles["90"]),
        p99_ms=duration_ms(percentiles["99"]),
        socket_errors=(
            dict(
                zip(("connect", "read", "write", "timeout"), map(int, socket.groups()), strict=True)
            )
            if socket
            else {}
        ),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )
    summary = re.search(r"^BENCH-SUMMARY (\{.*\})\s*$", output, re.MULTILINE)
    if summary is not None:
        data = json.loads(summary.group(1))
        # The Lua percentiles are exact microseconds, where wrk's report rounds to 2 digits.
        result.p50_ms = data["p50_us"] / 1000
        result.p95_ms = data["p95_us"] / 1000
        result.p99_ms = data["p99_us"] / 1000
        result.max_ms = data["max_us"] / 1000
        result.statuses = {int(status): count for status, count in data["statuses"].items()}
    return result


def pinned(cpus: frozenset[int] | None) -> list[str]:
    """The prefix that runs a command on ``cpus`` only (util-linux's taskset: set before the
    exec, so every thread and child process inherits it); none for None."""
    if not cpus:
        return []
    return ["taskset", "--cpu-list", ",".join(str(cpu) for cpu in sorted(cpus))]


@dataclass
class WrkRun:
    """One wrk invocation: a Lua script from bench/load/lua and its arguments."""

    url: str
    script: str
    connections: int
    seconds: int
    args: list[str] = field(default_factory=list)
    threads: int = 2
    timeout_s: int = 10
    cpus: frozenset[int] | None = None
    """The CPUs wrk may run on (--pin, through taskset); None: any."""

    def command(self) -> list[str]:
        command = [
            "wrk",
            f"-t{min(self.threads, self.connections)}",
            f"-c{self.connections}",
            f"-d{self.seconds}s",
            f"--timeout={self.timeout_s}s",
            "--latency",
            "-s",
            str(LUA_DIR / f"{self.script}.lua"),
            self.url,
        ]
        if self.args:
            command = [*command, "--", *self.args]
        return [*pinned(self.cpus), *command]

    def shown(self, names: dict[str, str]) -> str:
        """The command as the results show it: the repository-relative script and the
        fixture files by name instead of their temporary paths."""
        parts = []
        for part in self.command():
            if part.startswith(str(LUA_DIR)):
                part = f"bench/load/lua/{Path(part).name}"
            parts.append(names.get(part, part))
        return shlex.join(parts)

    def run(self) -> WrkResult:
        completed = subprocess.run(
            self.command(),
            capture_output=True,
            text=True,
            timeout=self.seconds + self.timeout_s + 60,
            check=False,
        )
        if completed.returncode != 0:
            raise WrkError(f"wrk exited {completed.returncode}: {completed.stderr.strip()}")
        return parse_wrk(completed.stdout)
