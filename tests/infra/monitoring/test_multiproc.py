"""Multiprocess directory life cycle: a fresh directory per serve, dead workers' gauges go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainconsult.infra.monitoring.multiproc import (
    MULTIPROC_ENV,
    prepare_multiprocess_dir,
    reap_dead_workers,
    remove_multiprocess_dir,
)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_serve_gets_a_fresh_directory_and_old_ones_of_dead_serves_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # setenv first, so that the variable prepare_multiprocess_dir exports is undone afterwards.
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.delenv(MULTIPROC_ENV)
    stale = tmp_path / "metrics" / f"serve-{dead_pid()}"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"old")

    path = prepare_multiprocess_dir(tmp_path)

    assert os.environ[MULTIPROC_ENV] == str(path)
    assert path.name == f"serve-{os.getpid()}"
    assert list(path.iterdir()) == []
    assert not stale.exists()
    remove_multiprocess_dir(path)
    assert not path.exists()


def test_an_operator_chosen_directory_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "prom"
    monkeypatch.setenv(MULTIPROC_ENV, str(chosen))

    assert prepare_multiprocess_dir(tmp_path / "var") == chosen
    assert chosen.is_dir()
    remove_multiprocess_dir(chosen)
    assert chosen.is_dir()


def test_dead_workers_lose_their_gauges_but_keep_their_counters(tmp_path: Path) -> None:
    gone, alive = dead_pid(), os.getpid()
    for name in (
        f"gauge_max_{gone}.db",
        f"gauge_liveall_{gone}.db",
        f"counter_{gone}.db",
        f"histogram_{gone}.db",
        f"gauge_max_{alive}.db",
    ):
        (tmp_path / name).write_bytes(b"")

    assert reap_dead_workers(tmp_path) == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{gone}.db", f"histogram_{gone}.db", f"gauge_max_{alive}.db"]
    )
