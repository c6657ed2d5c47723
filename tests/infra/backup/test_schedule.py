"""The scheduled backup runs in the job worker that `serve` starts in embedded mode, with the
embedded server's own pg_dump, into the default store under the data dir, and prunes by
BACKUP_RETENTION."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chainconsult.infra.backup.catalog import list_backups
from chainconsult.infra.backup.store import FileStore
from tests.test_cli import _free_port, _wait_until_up


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def backup_events(log: Path) -> list[dict[str, object]]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if '"backup_done"' in line:
            events.append(json.loads(line))
    return events


@pytest.mark.slow
def test_serve_in_embedded_mode_backs_up_on_schedule_and_prunes_by_retention(
    tmp_path: Path,
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        {
            "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
            "REDIS_URL": "",
            "BACKUP_SCHEDULE": "* * * * * */2",  # every two seconds
            "BACKUP_RETENTION": "1h",  # within an hour: only the newest
        }
    )
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "chainconsult", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", process, timeout=180)
        wait_for(
            lambda: any(event["pruned"] for event in backup_events(log)),
            timeout=120,
            what="a scheduled backup that pruned an older one",
        )
    finally:
        process.terminate()
        assert process.wait(60) == 0

    store = FileStore(tmp_path / "var" / "backups", "file://var/backups")
    complete = [item for item in list_backups(store) if item.manifest is not None]
    pruned = {str(backup_id) for event in backup_events(log) for backup_id in event["pruned"]}  # type: ignore[attr-defined]
    assert complete
    assert pruned.isdisjoint(item.id for item in complete)
    manifest = complete[-1].manifest
    assert manifest is not None
    assert manifest.database == "chainconsult"
    assert "public.procrastinate_jobs" in manifest.row_counts
    assert manifest.schema_revision is not None
    # The embedded server's own pg_dump (the wheel's), of its major version.
    assert manifest.tools["pg_dump"].split(".")[0] == manifest.server_version.split(".")[0]
