"""One `serve` per data dir: an exclusive lock on ``<data dir>/serve.lock``.

The server workers `serve` forks inherit the lock (flock belongs to the open file, which they
share), so it is free only once the whole process tree is gone. A `serve` killed with SIGKILL
takes its workers with it (infra/parent_death.py), but they need a moment to stop; a new
`serve` waits for them, and ends any that a killed one left for good."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from pathlib import Path
from typing import IO

import psutil

from chainconsult.infra.embedded.postgres import EmbeddedDatabaseError, process_running

LEFTOVER_GRACE_S = 10.0
"""How long a killed `serve`'s workers may take to stop before they are killed."""


class ServeLock:
    """An exclusive lock on ``<data dir>/serve.lock`` held for the life of `serve`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "serve.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            if not _try_lock(handle):
                self._end_leftovers(handle)
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def _end_leftovers(self, handle: IO[str]) -> None:
        """The lock is held: by a running `serve` (refused), or by what a killed one left."""
        handle.seek(0)
        owner = handle.read().strip()
        if not owner.isdigit() or _pid_running(int(owner)):
            raise EmbeddedDatabaseError(
                f"another chainconsult serve (pid {owner or 'unknown'}) is using the data dir "
                f"{self.path.parent}; stop it first or set CHAINCONSULT_DATA_DIR to another "
                "directory"
            )
        # Its owner is gone: the holders are its workers, still stopping or left behind.
        holders = _processes_holding(self.path)
        for process in holders:
            _signal(process, signal.SIGTERM)
        _, alive = psutil.wait_procs(holders, timeout=LEFTOVER_GRACE_S)
        for process in alive:
            _signal(process, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=LEFTOVER_GRACE_S)
        deadline = time.monotonic() + LEFTOVER_GRACE_S
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise EmbeddedDatabaseError(
                    f"the data dir {self.path.parent} is still locked by processes of a killed "
                    f"chainconsult serve (pid {owner}); end them and start again"
                )
            time.sleep(0.1)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _pid_running(pid: int) -> bool:
    try:
        return process_running(psutil.Process(pid))
    except psutil.Error:
        return False


def _processes_holding(path: Path) -> list[psutil.Process]:
    """Other processes with ``path`` open (only ours can be seen, and only ours open it)."""
    target = str(path.resolve())
    holders = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process_running(process) and any(
                opened.path == target for opened in process.open_files()
            ):
                holders.append(process)
        except psutil.Error:
            continue
    return holders


def _signal(process: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(sig)
