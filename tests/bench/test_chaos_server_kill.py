"""The server-kill chaos scenario: it runs with the kernel setting an API host has
(deploy/sysctl.d) and leaves the machine as it found it, and it survives the server reaping
the worker it killed at any moment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil
import pytest
from bench.chaos.server_worker_kill import listen_queue_migration, wait_until_gone


def test_set_for_the_run_and_put_back(tmp_path: Path) -> None:
    setting = tmp_path / "tcp_migrate_req"
    setting.write_text("0\n")
    with listen_queue_migration("1", setting) as line:
        assert setting.read_text() == "1"
        assert line == "1 (set for this run; was 0)"
    assert setting.read_text().strip() == "0"


def test_put_back_when_the_run_fails(tmp_path: Path) -> None:
    setting = tmp_path / "tcp_migrate_req"
    setting.write_text("0\n")
    try:
        with listen_queue_migration("1", setting):
            raise RuntimeError("scenario crashed")
    except RuntimeError:
        pass
    assert setting.read_text().strip() == "0"


def test_left_alone_when_already_so_or_missing(tmp_path: Path) -> None:
    setting = tmp_path / "tcp_migrate_req"
    with listen_queue_migration("1", setting) as line:
        assert line == "not available on this kernel"
    assert not setting.exists()
    setting.write_text("1\n")
    with listen_queue_migration("1", setting) as line:
        assert line == "1 (as found)"
    assert setting.read_text() == "1\n"


def test_a_killed_worker_reaped_between_two_looks_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server reaps its dead worker at any moment: here before the first look at it. (A
    # check that the pid exists, then a read of its status, crashed the scenario when the
    # reaping fell between the two.)
    child = subprocess.Popen(["sleep", "60"])
    child.kill()
    child.wait()
    monkeypatch.setattr(psutil, "pid_exists", lambda _pid: True)
    wait_until_gone(child.pid)
