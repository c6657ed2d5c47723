"""`chainconsult serve` with several workers warns when the kernel would reset the connections
waiting for a worker that dies (net.ipv4.tcp_migrate_req = 0), and stays quiet otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainconsult.infra.listen_queue import SYSCTL, migration_setting, migration_warning


@pytest.fixture
def setting(tmp_path: Path) -> Path:
    return tmp_path / "tcp_migrate_req"


def test_the_setting_is_read_as_the_kernel_prints_it(setting: Path) -> None:
    setting.write_text("1\n")
    assert migration_setting(setting) == "1"


def test_no_setting_where_the_kernel_has_none(setting: Path) -> None:
    assert migration_setting(setting) is None
    assert migration_warning(4, setting) is None


def test_several_workers_without_migration_get_a_warning_naming_the_fix(setting: Path) -> None:
    setting.write_text("0\n")
    warning = migration_warning(2, setting)
    assert warning is not None
    assert SYSCTL in warning
    assert "deploy/sysctl.d/60-chainconsult.conf" in warning


def test_one_worker_or_migration_on_needs_no_warning(setting: Path) -> None:
    setting.write_text("0\n")
    assert migration_warning(1, setting) is None
    setting.write_text("1\n")
    assert migration_warning(3, setting) is None


def test_the_deploy_file_sets_what_the_warning_asks_for() -> None:
    conf = Path(__file__).resolve().parents[2] / "deploy/sysctl.d/60-chainconsult.conf"
    lines = [line for line in conf.read_text().splitlines() if not line.startswith("#")]
    assert f"{SYSCTL} = 1" in lines
