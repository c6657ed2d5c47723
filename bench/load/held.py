"""`held_connections`: many concurrent keep-alive connections (10,000 by default) opened at a
steady pace, then all held open together for a minute, each making a request every few
seconds; counts connect errors, resets, timeouts and non-2xx, and keeps the latency of every
request.

The client is hand-written on asyncio streams (uvloop) rather than wrk: wrk opens all of its
connections at once (no ramp, so a burst beyond the listen backlog) and then sends requests
back to back as fast as it can, which measures throughput at 10,000 connections, not 10,000
users holding connections; it also cannot say which connection failed how.

Keep-alive: `chainconsult serve` closes a connection that has not completed a request's headers
within the shorter of HTTP_KEEP_ALIVE_TIMEOUT (5 s by default) and HTTP_HEADER_TIMEOUT (10 s),
counted from its opening or from the end of its last response (granian has one timer for
both). Keeping 10,000 connections alive under the 5 s default takes over 2,000 requests a
second from the held connections alone, more than a 2-core machine that also runs the client
served in our runs, so the run sets both to 75 s (nginx's keep-alive default; any balancer's
idle timeout in front must be shorter) and each connection asks every 10-20 s, like a user
reading pages; both are options (--held-keep-alive, --held-interval)."""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.load._servers import RssSampler, chainconsult_server

SOMAXCONN = Path("/proc/sys/net/core/somaxconn")
SERVE_BACKLOG = 2048
"""The listen backlog of `chainconsult serve` (commands/serve.py, granian_server)."""


def raise_file_limit(needed: int) -> tuple[int, int]:
    """Raise this process's open-file limit (children, the servers, inherit it) to at least
    ``needed`` when the hard limit allows, else as far as it goes. Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        # Raising the hard limit needs root (CAP_SYS_RESOURCE); without it keep the old one.
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed, needed
        except (ValueError, OSError):
            pass
    target = hard if hard == resource.RLIM_INFINITY or hard < needed else max(soft, needed)
    if target != resource.RLIM_INFINITY and target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def somaxconn() -> int | None:
    try:
        return int(SOMAXCONN.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class HeldOptions:
    connections: int = 10_000
    hold_seconds: float = 60
    ramp_per_second: float = 250
    """New connections a second while ramping up (well under the listen backlog)."""
    interval_seconds: tuple[float, float] = (20.0, 40.0)
    """Pause between one response and the next request on a connection: drawn uniformly
    from this range, under the keep-alive timeout."""
    keep_alive_seconds: int | None = 75
    """HTTP_KEEP_ALIVE_TIMEOUT for the server; None leaves its default (5 s)."""
    first_request_within: float = 8.0
    """The first request goes out at a random moment this long after connecting (under the
    10 s header timeout; at most the longest interval), so the ramp does not turn into a
    burst of requests."""
    path: str = "/api/v2/experts"
    timeout_seconds: float = 10


@dataclass
class HeldResult:
    options: HeldOptions
    opened: int = 0
    held_to_end: int = 0
    """Connections open, without any failure, when the hold ended."""
    peak_open: int = 0
    connect_errors: Counter[str] = field(default_factory=Counter)
    request_errors: Counter[str] = field(default_factory=Counter)
    """Requests without an answer, by kind: reset, closed (EOF), timeout."""
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    ramp_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def errors(self) -> int:
        return (
            sum(self.connect_errors.values()) + sum(self.request_errors.values()) + (self.non_2xx)
        )

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class _ProtocolError(Exception):
    pass


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length is None:
        raise _ProtocolError("a response without Content-Length")
    await reader.readexactly(length)
    return status


async def hold(host: str, port: int, options: HeldOptions) -> HeldResult:
    result = HeldResult(options)
    request = (
        f"GET {options.path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    rng = random.Random(5)
    started = time.monotonic()
    ramp = options.connections / options.ramp_per_second
    hold_until = started + ramp + options.hold_seconds
    open_now = 0

    async def connection(index: int) -> None:
        nonlocal open_now
        await asyncio.sleep(index / options.ramp_per_second)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), options.timeout_seconds
            )
        except (OSError, TimeoutError) as exc:
            result.connect_errors[type(exc).__name__] += 1
            return
        result.opened += 1
        open_now += 1
        result.peak_open = max(result.peak_open, open_now)
        try:
            first = min(options.first_request_within, options.interval_seconds[1])
            await asyncio.sleep(rng.uniform(0, first))
            while True:
                sent = time.monotonic()
                try:
                    status = await asyncio.wait_for(
                        _exchange(reader, writer, request), options.timeout_seconds
                    )
                except TimeoutError:
                    result.request_errors["timeout"] += 1
                    return
                except asyncio.IncompleteReadError:
                    result.request_errors["closed by the server"] += 1
                    return
                except (OSError, _ProtocolError, ValueError) as exc:
                    result.request_errors[type(exc).__name__] += 1
                    return
                result.latencies_ms.append(1000 * (time.monotonic() - sent))
                result.statuses[status] += 1
                pause = rng.uniform(*options.interval_seconds)
                if time.monotonic() + pause >= hold_until:
                    # No request at the end (all of them at once would be a burst): the
                    # connection counts as held if the server has not closed it by then.
                    await asyncio.sleep(max(0.0, hold_until - time.monotonic()))
                    await asyncio.sleep(0)  # let a pending EOF reach the reader
                    if reader.at_eof():
                        result.request_errors["closed by the server"] += 1
                    else:
                        result.held_to_end += 1
                    return
                await asyncio.sleep(pause)
        finally:
            open_now -= 1
            writer.close()

    await asyncio.gather(*(connection(index) for index in range(options.connections)))
    result.ramp_seconds = ramp
    result.seconds = time.monotonic() - started
    return result


def run_hold(host: str, port: int, options: HeldOptions) -> HeldResult:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(hold(host, port, options))


@dataclass
class HeldRun:
    result: HeldResult
    rss_peak: list[float]
    rss_after: list[float]
    workers: int


def run_held(
    env: dict[str, str],
    options: HeldOptions,
    *,
    log: Path,
    progress: Callable[[str], None],
    workers: int = 2,
) -> HeldRun:
    """The held connections against a fresh `chainconsult serve --workers N`, with each
    worker's RSS sampled during the hold (peak) and read after it."""
    env = dict(env)
    if options.keep_alive_seconds is not None:
        env["HTTP_KEEP_ALIVE_TIMEOUT"] = str(options.keep_alive_seconds)
        env["HTTP_HEADER_TIMEOUT"] = str(options.keep_alive_seconds)
    with chainconsult_server(env, workers=workers, log=log) as server:
        server.start()
        progress(
            f"held connections: {options.connections:,} on {workers} workers, ramp "
            f"{options.connections / options.ramp_per_second:.0f} s + hold "
            f"{options.hold_seconds:.0f} s"
        )
        limit = somaxconn()
        if limit is not None and limit < SERVE_BACKLOG:
            progress(
                f"net.core.somaxconn is {limit}: the kernel caps the server's backlog of "
                f"{SERVE_BACKLOG} to it (sysctl -w net.core.somaxconn={SERVE_BACKLOG})"
            )
        peak: list[float] = [0.0] * workers
        sampler = RssSampler(server, every_seconds=2.0).start()
        result = run_hold("127.0.0.1", server.port, options)
        sampler.stop()
        for sample in sampler.samples:
            peak = [max(a, b) for a, b in zip(peak, sample.rss_mb, strict=False)]
        time.sleep(2)  # let the workers finish closing the connections
        return HeldRun(result, peak, server.worker_rss_mb(), workers)
