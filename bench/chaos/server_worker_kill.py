"""Chaos 4: one server worker SIGKILLed while the others serve (twice, a different worker
each time), as the kernel's OOM killer or a crash would.

`chainconsult serve --workers 3` shares one listening socket between its workers, and the
server process starts a new worker when one dies. Expected: only the requests the dead
worker was handling fail (the client sees the connection close with no answer); every other
request, including new connections made at that moment, is served by the other workers; no
acknowledged write is lost.

Each worker has a listening socket of its own (SO_REUSEPORT), so the connections waiting in a
killed worker's accept queue are reset unless the kernel migrates them to another worker
(``net.ipv4.tcp_migrate_req``, src/chainconsult/infra/listen_queue.py). The scenario runs
as deploy/sysctl.d sets an API host: 1 for the run, the old value put back afterwards.
CHAOS_TCP_MIGRATE_REQ=0 runs it with the kernel's default instead, to see the difference."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from bench.chaos._load import Load, prepare
from bench.chaos._report import (
    FaultWindow,
    ScenarioReport,
    audit_jobs,
    audit_writes,
    last_failure_of,
    wait_for_jobs,
)
from bench.chaos._stack import ApiServer, Stack, StackOptions
from bench.chaos._watch import latency_ms, seconds

from chainconsult.infra.listen_queue import MIGRATE_REQ, SYSCTL, migration_setting

NAME = "server"
SERVER_WORKERS = 3


@contextlib.contextmanager
def listen_queue_migration(wanted: str, path: Path = MIGRATE_REQ) -> Iterator[str]:
    """Runs the block with the kernel setting at ``wanted`` ("0" or "1") and puts the old
    value back; yields a line for the report: what was in effect, and whether it was set
    here (it cannot be without root, or where the kernel has no such setting)."""
    before = migration_setting(path)
    if before is None:
        yield "not available on this kernel"
        return
    if before == wanted:
        yield f"{before} (as found)"
        return
    try:
        path.write_text(wanted)
    except OSError as exc:
        yield f"{before} (could not set {wanted}: {exc.strerror})"
        return
    try:
        yield f"{wanted} (set for this run; was {before})"
    finally:
        path.write_text(before)


def client_ports(server: ApiServer, pid: int) -> frozenset[int]:
    """The client-side ports of the connections ``pid`` holds on the server's port."""
    with contextlib.suppress(psutil.Error):
        return frozenset(
            conn.raddr.port
            for conn in psutil.Process(pid).net_connections(kind="tcp")
            if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == server.port
        )
    return frozenset()


def kill_one(server: ApiServer, candidates: set[int]) -> tuple[int, frozenset[int], float, float]:
    """SIGKILL the one of ``candidates`` holding the most client connections (the kernel
    hands keep-alive connections out unevenly, and a worker without any would fail
    nothing); returns (pid, the client ports of its connections, kill time, time it was
    gone)."""
    held = {pid: client_ports(server, pid) for pid in server.worker_pids() if pid in candidates}
    pid = max(held, key=lambda candidate: len(held[candidate]))
    moment = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    return pid, held[pid], moment, time.monotonic()


def wait_until_gone(pid: int) -> None:
    """Until ``pid`` has exited (a zombie, or already reaped by the server, which may happen
    between any two looks at it)."""
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.001)


def replaced(
    server: ApiServer, before: set[int], since: float, claimed: set[int], timeout: float = 60
) -> tuple[float | None, float | None]:
    """Seconds from ``since`` until the server started a worker that was not there before the
    kill, and until that worker had accepted a client connection (so it serves). Meanwhile
    it keeps opening connections (each sends one request and stays open, keep-alive), so the
    new worker is offered one as soon as it accepts, and holds it long enough to be seen."""
    spawned = None
    mine: set[int] = set()
    probes: collections.deque[socket.socket] = collections.deque()
    try:
        while time.monotonic() - since < timeout:
            new = set(server.worker_pids()) - before - claimed
            if new and spawned is None:
                spawned = time.monotonic() - since
                # The replacement of an earlier kill is not this kill's replacement.
                new = {min(new)}
                claimed |= new
                mine = new
            if any(client_ports(server, pid) for pid in mine):
                return spawned, time.monotonic() - since
            with contextlib.suppress(OSError):
                probe = socket.create_connection((server.host, server.port), timeout=1)
                probe.sendall(b"GET /livez HTTP/1.1\r\nHost: chaos\r\n\r\n")
                probes.append(probe)
            while len(probes) > 10:
                probes.popleft().close()
            time.sleep(0.02)
    finally:
        for probe in probes:
            probe.close()
    return spawned, None


async def run(*, quick: bool = False) -> ScenarioReport:
    warmup, spacing, after = (4.0, 5.0, 4.0) if quick else (8.0, 8.0, 8.0)
    with (
        listen_queue_migration(os.environ.get("CHAOS_TCP_MIGRATE_REQ", "1")) as migration,
        Stack(StackOptions(server_workers=SERVER_WORKERS, job_workers=1)) as stack,
    ):
        server = stack.server
        assert server is not None
        fixtures = prepare(stack)
        load = Load(stack.base_url, fixtures, readers=12)
        duration = warmup + spacing + after
        t0 = time.monotonic()
        traffic = asyncio.create_task(load.run(duration))
        windows: list[FaultWindow] = []
        recovery: dict[str, str] = {SYSCTL: migration}
        # Each kill hits a worker that has served since the start, not a fresh replacement.
        originals = set(server.worker_pids())
        await asyncio.sleep(warmup)
        claimed: set[int] = set()
        watches = []
        for number in (1, 2):
            if number == 2:
                await asyncio.sleep(max(0.0, t0 + warmup + spacing - time.monotonic()))
            before = set(server.worker_pids())
            pid, held, moment, gone = await asyncio.to_thread(kill_one, server, originals)
            originals.discard(pid)
            recovery[f"kill #{number}: connections the worker held (load and probes)"] = str(
                len(held)
            )
            windows.append(FaultWindow(f"#{number} (pid {pid})", moment, gone, held))
            # Watched on the side: the second kill comes on time however slow the first
            # replacement is to start.
            watches.append(
                asyncio.create_task(asyncio.to_thread(replaced, server, before, moment, claimed))
            )
        await traffic
        for number, watch in enumerate(watches, start=1):
            spawned, serving = await watch
            recovery[f"kill #{number}: replacement worker started after"] = seconds(spawned)
            recovery[f"kill #{number}: replacement accepting connections after"] = seconds(serving)
        for window in windows:
            recovery[f"kill {window.label}: last of its failed requests ended after"] = seconds(
                last_failure_of(load.outcomes, window)
            )
            recovery[f"kill {window.label}: latency in the 2 s after"] = latency_ms(
                load.outcomes, window.start, window.start + 2
            )
        recovery["latency before the first kill"] = latency_ms(load.outcomes, t0, windows[0].start)
        drained = await asyncio.to_thread(wait_for_jobs, stack, timeout=60)
        recovery["jobs drained after the load in"] = seconds(drained)
        return ScenarioReport(
            name="Server worker SIGKILLed while the others serve",
            fault=(
                f"SIGKILL to one of {SERVER_WORKERS} workers of `chainconsult serve` at "
                f"+{warmup:.0f} s and another at +{warmup + spacing:.0f} s"
            ),
            load_seconds=duration,
            outcomes=load.outcomes,
            windows=windows,
            writes=audit_writes(stack, load),
            jobs=audit_jobs(stack, load),
            stale_reads=len(load.freshness.stale_reads()),
            recovery=recovery,
            t0=t0,
        )


if __name__ == "__main__":
    from bench.chaos.__main__ import main

    main([NAME])
