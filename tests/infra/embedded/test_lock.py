"""One `serve` per data dir, and what a `serve` killed with SIGKILL leaves is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from chainconsult.infra.embedded.lock import ServeLock
from chainconsult.infra.embedded.postgres import EmbeddedDatabaseError

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from chainconsult.infra.embedded.lock import ServeLock

    lock = ServeLock(Path(sys.argv[1]))
    lock.acquire()
    # A server worker: forked, so it shares the lock, as granian's workers do.
    worker = os.fork()
    if worker == 0:
        time.sleep(120)
        os._exit(0)
    print(worker, flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], psutil.Process]]:
    """A stand-in `serve` holding the lock of ``tmp_path``, and its forked worker."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        worker = psutil.Process(int(process.stdout.readline()))
        yield process, worker
        process.kill()
        if worker.is_running():
            worker.kill()


def test_a_running_serve_keeps_the_data_dir_to_itself(
    tmp_path: Path, holder: tuple[subprocess.Popen[str], psutil.Process]
) -> None:
    process, _ = holder

    with pytest.raises(
        EmbeddedDatabaseError, match=f"another chainconsult serve \\(pid {process.pid}\\)"
    ):
        ServeLock(tmp_path).acquire()


def test_the_data_dir_of_a_killed_serve_is_taken_over_from_its_leftover_workers(
    tmp_path: Path, holder: tuple[subprocess.Popen[str], psutil.Process]
) -> None:
    process, worker = holder
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert worker.is_running()  # this stand-in's worker is not tied to its master

    lock = ServeLock(tmp_path)
    lock.acquire()
    try:
        assert not worker.is_running()
        assert (tmp_path / "serve.lock").read_text() == str(os.getpid())
    finally:
        lock.release()
