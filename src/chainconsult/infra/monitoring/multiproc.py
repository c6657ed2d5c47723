"""Prometheus multiprocess mode for `chainconsult serve` with several server workers.

prometheus-client picks its value storage when ``prometheus_client`` is first imported, so the
directory must be in the environment before a worker imports anything that defines a metric.
This module therefore imports nothing from prometheus_client at module level: `serve` calls
``prepare_multiprocess_dir`` before granian forks its workers, and nothing `serve` imports
before that point may import prometheus_client (the forked workers inherit the parent's
modules; tests/infra/monitoring/test_multiprocess_metrics.py would see the counts split)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SERVE_DIR = re.compile(r"serve-(\d+)")
_GAUGE_FILE = re.compile(r"gauge_[a-z]+_(\d+)\.db")


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """A fresh ``<data dir>/metrics/serve-<pid>`` for this serve process, exported in the
    environment its workers inherit. Directories of serve processes that are gone are removed:
    their counters described a server that no longer runs."""
    configured = multiprocess_dir()
    if configured is not None:
        # The operator chose the directory (and owns its life cycle); only make sure it exists.
        configured.mkdir(parents=True, exist_ok=True)
        return configured
    root = (data_dir / "metrics").resolve()
    root.mkdir(parents=True, exist_ok=True)
    for child in root.iterdir():
        match = _SERVE_DIR.fullmatch(child.name)
        if match and not pid_alive(int(match.group(1))):
            shutil.rmtree(child, ignore_errors=True)
    path = root / f"serve-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess_dir(path: Path) -> None:
    """Called by `serve` on exit for the directory it created."""
    if _SERVE_DIR.fullmatch(path.name):
        shutil.rmtree(path, ignore_errors=True)


def reap_dead_workers(path: Path) -> list[int]:
    """Drop the gauge files of worker processes that died (crashed or were restarted).

    prometheus-client's ``mark_process_dead`` removes only the ``live*`` gauge modes; a dead
    worker's ``max``/``min``/``sum`` gauges would otherwise keep reporting a state (an active
    alert, a pool size) of a process that no longer exists. Counters and histograms stay: the
    requests the dead worker served did happen, and counters must never go down."""
    dead: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path):
            match = _GAUGE_FILE.fullmatch(entry.name)
            if match and not pid_alive(int(match.group(1))):
                dead.add(int(match.group(1)))
    for pid in dead:
        for file in path.glob(f"gauge_*_{pid}.db"):
            file.unlink(missing_ok=True)
    return sorted(dead)


def mark_this_process_dead() -> None:
    """On a clean worker exit: its live gauges stop counting at once."""
    path = multiprocess_dir()
    if path is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]
