"""The server-kill chaos scenario runs with the kernel setting an API host has (deploy/sysctl.d)
and leaves the machine as it found it."""

from __future__ import annotations

from pathlib import Path

from bench.chaos.server_worker_kill import listen_queue_migration


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
