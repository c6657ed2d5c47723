"""Private services for fault injection: a PostgreSQL cluster, a redis-server and an SMTP sink
that belong to one script run, on free ports, removed when the run ends. Faults are only ever
injected into these, never into a server anyone else uses."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql


class ServiceError(RuntimeError):
    """A private service could not start; the message says why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


def _postgres_bindir() -> Path:
    """PG_BINDIR, else pg_ctl on PATH, else the newest Debian/Ubuntu server package (whose
    binaries are not on PATH by design)."""
    configured = os.environ.get("PG_BINDIR")
    if configured:
        return Path(configured)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if not candidates:
        raise ServiceError("no PostgreSQL server binaries: set PG_BINDIR or install postgresql")
    return Path(candidates[-1]).parent


class PrivatePostgres:
    """A throwaway cluster (initdb, pg_ctl) on ``host``:``port`` with trust authentication.

    PostgreSQL refuses to run as root, so under root the binaries run as the ``postgres``
    system account (the one the distribution's package creates)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        trusted_network: str | None = None,
        max_connections: int = 300,
        prefix: Sequence[str] = (),
        root: Path | None = None,
    ) -> None:
        self.host = host
        self.prefix = list(prefix)
        """Runs the server under this command prefix (``ip netns exec NAME``)."""
        self.port = port or free_port(host)
        self.trusted_network = trusted_network
        self.max_connections = max_connections
        self.bindir = _postgres_bindir()
        self.root = root or Path(tempfile.mkdtemp(prefix="ccchaos-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata = self.root / "data"
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError(
                    "running as root needs a 'postgres' system account for PostgreSQL"
                ) from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 120, in_prefix: bool = False) -> None:
        # A namespace is entered as root; the server binaries then run as postgres.
        command = [*(self.prefix if in_prefix else []), *self._run_as, *args]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise ServiceError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-800:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def start(self) -> PrivatePostgres:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.pgdata}'",
            "max_connections": str(self.max_connections),
            "shared_buffers": "'128MB'",
            "log_min_messages": "warning",
            "logging_collector": "off",
        }
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        if self.trusted_network:
            with (self.pgdata / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self.trusted_network} trust\n")
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
            in_prefix=True,
        )
        return self

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(ServiceError, subprocess.TimeoutExpired):
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "immediate",
                    "stop",
                    timeout=60,
                )
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def terminate_backends(
        self, database: str, *, application_prefix: str = ""
    ) -> tuple[int, float]:
        """pg_terminate_backend every session on ``database`` (whose application_name starts
        with the prefix), then wait until they are gone. Returns (how many, seconds until
        the last one had exited)."""
        started = time.monotonic()
        with psycopg.connect(self.url(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()"
                " AND coalesce(application_name, '') LIKE %s",
                (database, f"{application_prefix}%"),
            ).fetchall()
            pids = [pid for pid, _ in rows]
            # pg_terminate_backend only sends the signal: the fault lasts until they exit.
            while pids:
                alive = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                ).fetchone()
                if alive is None or alive[0] == 0:
                    break
                time.sleep(0.005)
        return len(pids), time.monotonic() - started


class PrivateRedis:
    """A redis-server without persistence; ``kill`` and ``start`` again keep the port."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = None, prefix: Sequence[str] = ()
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("no redis-server on PATH (apt-get install redis-server)")
        self.binary = binary
        self.host = host
        self.port = port or free_port(host)
        self.prefix = list(prefix)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [
                *self.prefix,
                self.binary,
                "--port", str(self.port),
                "--bind", self.host,
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "no",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.host, self.port, 10, "redis-server")
        return self

    def kill(self) -> None:
        """SIGKILL: every connection resets, the port refuses until ``start``."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        self.kill()


@dataclass
class Delivered:
    recipients: list[str]
    message_id: str
    subject: str
    peer: str
    """Address the message came from (which host sent it)."""


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd, its own thread) that keeps what it accepts. ``rcpt_delay``
    makes each conversation slow before DATA, so jobs are mid-flight when a worker dies and
    the killed conversation delivers nothing."""

    host: str = "127.0.0.1"
    port: int = 0
    rcpt_delay: float = 0.0
    received: list[Delivered] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Any = None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if sink.rcpt_delay:
                    import asyncio

                    await asyncio.sleep(sink.rcpt_delay)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = message_from_bytes(envelope.content, policy=policy.default)
                with sink.lock:
                    sink.received.append(
                        Delivered(
                            recipients=list(envelope.rcpt_tos),
                            message_id=str(message.get("Message-ID", "")),
                            subject=str(message.get("Subject", "")),
                            peer=str(session.peer[0]) if session.peer else "",
                        )
                    )
                return "250 Message accepted for delivery"

        self.port = self.port or free_port(self.host)
        self._controller = Controller(Handler(), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def duplicates(self) -> int:
        """Messages accepted more than once (same Message-ID)."""
        with self.lock:
            counts = Counter(item.message_id for item in self.received)
        return sum(count - 1 for count in counts.values() if count > 1)

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def stop_process_group(process: subprocess.Popen[Any], *, grace: float = 20) -> None:
    """SIGTERM the process group we started (the server and its workers), SIGKILL after
    ``grace`` seconds."""
    # The whole group even when its leader is gone: orphaned server workers stay in it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
