"""`sse_held`: N idle event streams (`GET /api/v2/events`) held against one `chainconsult
serve` worker, and that worker's RSS before and while they are held. Target: 2,000 streams
under 250 MB (docs/conversations.md).

    python -m bench.sse_held --connections 2000 --hold 30 [--baseline-src DIR]

The streams belong to N/5 accounts (SSE_MAX_CONNECTIONS_PER_USER's default), registered
first. Each stream is a bare asyncio connection that reads what arrives (the heartbeats), so
the client side stays small; a stream counts as held once its first bytes (``: connected``)
arrived. BENCH_DATABASE_URL / BENCH_REDIS_URL as for the other runs (bench/README.md);
without them private servers are started."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench.chaos._stack import run_cli
from bench.load._servers import REPO_ROOT, Server, chainconsult_server, server_env, services
from bench.load.held import raise_file_limit

PASSWORD = "correct horse battery staple"
PER_ACCOUNT = 5


@dataclass
class Held:
    opened: int = 0
    failed: list[str] = field(default_factory=list)
    closed_early: int = 0
    heartbeats: int = 0


async def register(base_url: str, count: int) -> list[str]:
    """``count`` accounts' bearer tokens."""
    tokens: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        for _ in range(count):
            email = f"sse-{uuid.uuid4().hex[:12]}@example.com"
            made = await http.post(
                "/api/v2/auth/register",
                json={
                    "email": email,
                    "password": PASSWORD,
                    "display_name": "SSE",
                    "role": "client",
                },
            )
            made.raise_for_status()
            login = await http.post(
                "/api/v2/auth/login", json={"email": email, "password": PASSWORD}
            )
            login.raise_for_status()
            tokens.append(login.json()["access_token"])
    return tokens


async def hold_one(port: int, token: str, held: Held, ready: asyncio.Event) -> None:
    """Open one stream, note when it is up, then read until cancelled."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        held.failed.append(f"connect: {exc}")
        return
    writer.write(
        (
            "GET /api/v2/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        if not head.startswith(b"HTTP/1.1 200"):
            held.failed.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            return
        held.opened += 1
        ready.set()
        while chunk := await reader.read(4096):
            held.heartbeats += chunk.count(b": heartbeat")
        held.closed_early += 1
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        held.failed.append(type(exc).__name__)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def measure(
    server: Server, tokens: list[str], connections: int, hold_seconds: float, ramp: float
) -> dict[str, object]:
    """Hold ``connections`` streams against ``server``'s one worker; its RSS along the way."""
    server.wait_idle()
    before = server.worker_rss_mb()
    held = Held()
    tasks = []
    started = time.monotonic()
    # The first streams also pay one-time costs (lazy imports, allocator arenas): RSS after
    # them and after the rest gives the cost of one more stream.
    warm = max(1, connections // 5)
    after_warm = before
    for index in range(connections):
        if index == warm:
            while held.opened + len(held.failed) < warm:
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)
            after_warm = server.worker_rss_mb()
        tasks.append(
            asyncio.create_task(
                hold_one(server.port, tokens[index // PER_ACCOUNT], held, asyncio.Event())
            )
        )
        await asyncio.sleep(1 / ramp)
    deadline = time.monotonic() + 60
    while held.opened + len(held.failed) < connections and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    ramped = time.monotonic() - started
    peak = before
    hold_until = time.monotonic() + hold_seconds
    while time.monotonic() < hold_until:
        peak = [max(a, b) for a, b in zip(peak, server.worker_rss_mb(), strict=False)]
        await asyncio.sleep(1)
    during = server.worker_rss_mb()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "connections": connections,
        "held": held.opened,
        "failed": len(held.failed),
        "failures": sorted(set(held.failed))[:5],
        "closed_by_server": held.closed_early,
        "heartbeats_seen": held.heartbeats,
        "ramp_seconds": round(ramped, 1),
        "hold_seconds": hold_seconds,
        "worker_rss_mb_before": before,
        "worker_rss_mb_held": during,
        "worker_rss_mb_peak": peak,
        "kb_per_stream": round((max(during) - max(before)) * 1024 / max(held.opened, 1), 1),
        "warm_up_streams": warm,
        "worker_rss_mb_after_warm_up": after_warm,
        "kb_per_stream_after_warm_up": round(
            (max(during) - max(after_warm)) * 1024 / max(held.opened - warm, 1), 1
        ),
    }


async def run(
    connections: int, hold_seconds: float, ramp: float, baseline_src: str | None
) -> dict[str, object]:
    """One database and one set of accounts; a fresh server for each tree measured, the
    baseline (when given) first."""
    raise_file_limit(connections * 2 + 1024)
    results: dict[str, object] = {}
    with services() as svc, tempfile.TemporaryDirectory(prefix="ccsse") as work_dir:
        work = Path(work_dir)
        env = server_env(svc, work / "var")
        env["SSE_HEARTBEAT_SECONDS"] = "15"
        # Registering N/5 accounts would take minutes at argon2's real cost; the hashes have
        # nothing to do with what a held stream costs.
        env.update(PASSWORD_HASH_MEMORY_KIB="1024", PASSWORD_HASH_TIME_COST="1")
        run_cli(env, "migrate", log=work / "migrate.log")
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if baseline_src:
            trees.insert(0, ("baseline", str(Path(baseline_src).resolve())))
        # The accounts are made through a server of their own, so that both measured servers
        # start alike (neither has served the registrations).
        with chainconsult_server(env, workers=1, log=work / "register.log").start() as server:
            tokens = await register(server.base_url, -(-connections // PER_ACCOUNT))
        for label, src in trees:
            tree_env = {**env, "REDIS_KEY_PREFIX": f"{env['REDIS_KEY_PREFIX']}-{len(results)}"}
            if src is not None:
                tree_env["PYTHONPATH"] = os.pathsep.join([src, str(REPO_ROOT)])
            log = work / f"server-{len(results)}.log"
            with chainconsult_server(tree_env, workers=1, log=log).start() as server:
                results[label] = await measure(server, tokens, connections, hold_seconds, ramp)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=60, help="seconds to hold them all")
    parser.add_argument("--ramp", type=float, default=50, help="new streams a second")
    parser.add_argument(
        "--baseline-src",
        help="a src/ directory of another version, measured first on the same accounts "
        "(git archive REV src | tar -x -C DIR)",
    )
    options = parser.parse_args()
    result = asyncio.run(run(options.connections, options.hold, options.ramp, options.baseline_src))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
