"""Point-in-time recovery from a base backup and the WAL archive, for operators who run
their own PostgreSQL with archive_command (set-up: docs/disaster-recovery.md).

Physical recovery yields a whole cluster, not a database: the base backup is replayed in a
private, throwaway PostgreSQL of the same major version (no TCP port, a socket in its own
directory, archiving off so it never writes into the real archive), up to ``until``; the one
database is then dumped from it and restored like any logical backup. The live server is
never touched until that last step, and the last step is the usual atomic restore."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from chainconsult.infra.backup.dump import DumpResult, dump_database
from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.manifest import BASE, WAL
from chainconsult.infra.backup.progress import Progress, Tick, silent
from chainconsult.infra.backup.store import BackupStore, StoredObject
from chainconsult.infra.backup.tools import PgTools, server_tools

_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
_LABEL_WAL = re.compile(r"START WAL LOCATION: .* \(file ([0-9A-F]{24})\)")
_LABEL_TIME = re.compile(r"START TIME: (.+)")
_RESTORED = re.compile(r'restored log file "([0-9A-F]{24})" from archive')
SERVER_USERS = ("postgres", "pgserver")
"""Accounts the recovery server runs as when this runs as root (PostgreSQL refuses root)."""


@dataclass(frozen=True, slots=True)
class BaseBackup:
    id: str
    objects: list[StoredObject]

    @property
    def archive(self) -> StoredObject:
        for stored in self.objects:
            if stored.key.rsplit("/", 1)[-1] in {"base.tar", "base.tar.gz"}:
                return stored
        raise BackupError(
            f"base backup {self.id} has no base.tar or base.tar.gz: take it with "
            "`pg_basebackup --format=tar`"
        )

    @property
    def wal_archive(self) -> StoredObject | None:
        for stored in self.objects:
            if stored.key.rsplit("/", 1)[-1] in {"pg_wal.tar", "pg_wal.tar.gz"}:
                return stored
        return None


def find_base_backup(store: BackupStore, backup_id: str) -> BaseBackup | None:
    objects = store.objects(f"{BASE}{backup_id}/")
    return BaseBackup(backup_id, objects) if objects else None


def recover_and_dump(
    store: BackupStore,
    base: BaseBackup,
    *,
    until: dt.datetime | None,
    database: str,
    role: str,
    dump_to: Path,
    progress: Progress = silent,
) -> DumpResult:
    """Replay ``base`` and the archived WAL up to ``until`` (None: all of it) and dump
    ``database`` as it was then into ``dump_to``."""
    # Short (a socket path has ~100 bytes) and traversable by the server's account.
    work = Path(tempfile.mkdtemp(prefix="ccpitr-"))
    try:
        pgdata = work / "data"
        start_segment, started_at = _unpack(store, base, pgdata, work, progress)
        if until is not None and started_at is not None and started_at > until:
            raise BackupError(
                f"base backup {base.id} started at {started_at:%Y-%m-%d %H:%M:%S %Z}, after "
                f"--until {until:%Y-%m-%d %H:%M:%S %Z}: use an older base backup"
            )
        tools = server_tools(int((pgdata / "PG_VERSION").read_text().strip()))
        wal = work / "wal"
        segments = _fetch_wal(store, start_segment, wal, progress)
        _configure(pgdata, wal, work, until)
        user = _server_user(work)
        url = make_conninfo(host=str(work), port=5432, dbname=database, user=role)
        with _recovery_server(tools, pgdata, url, user, segments, progress):
            return dump_database(url, dump_to, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unpack(
    store: BackupStore, base: BaseBackup, pgdata: Path, work: Path, progress: Progress
) -> tuple[str, dt.datetime | None]:
    pgdata.mkdir(mode=0o700)
    archives = [(base.archive, pgdata)]
    if base.wal_archive is not None:
        archives.append((base.wal_archive, pgdata / "pg_wal"))
    extra = [s.key for s in base.objects if s.key.endswith((".tar", ".tar.gz"))]
    if len(extra) > len(archives):
        raise BackupError(
            f"base backup {base.id} has tablespace archives ({', '.join(extra)}): "
            "recovery of clusters with tablespaces is not supported"
        )
    for stored, into in archives:
        local = work / stored.key.rsplit("/", 1)[-1]
        store.get_file(stored.key, local, progress)
        with tarfile.open(local, "r:*") as archive:
            archive.extractall(into, filter="data")
        local.unlink()
    label = (pgdata / "backup_label").read_text() if (pgdata / "backup_label").exists() else ""
    segment = _LABEL_WAL.search(label)
    if segment is None:
        raise BackupError(f"base backup {base.id} has no backup_label: it is not a base backup")
    when = _LABEL_TIME.search(label)
    return segment.group(1), _label_time(when.group(1)) if when else None


def _label_time(text: str) -> dt.datetime | None:
    # "2026-06-14 03:17:00 UTC" (the server's log_timezone; UTC unless configured otherwise).
    try:
        stamp, _, zone = text.strip().rpartition(" ")
        parsed = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if zone in {"UTC", "GMT"} else None


def _fetch_wal(store: BackupStore, start: str, into: Path, progress: Progress) -> int:
    """Copy the archived segments from the base backup's first one on (and every timeline
    history file) to ``into``; returns how many segments."""
    into.mkdir()
    wanted = [
        stored
        for stored in store.objects(WAL)
        if (name := stored.key[len(WAL) :])
        and (name.endswith(".history") or (_SEGMENT.match(name) and name[8:] >= start[8:]))
    ]
    for number, stored in enumerate(wanted, 1):
        store.get_file(stored.key, into / stored.key[len(WAL) :])
        progress(Tick("fetch WAL", number, len(wanted), "segments"))
    return sum(1 for stored in wanted if not stored.key.endswith(".history"))


def _configure(pgdata: Path, wal: Path, work: Path, until: dt.datetime | None) -> None:
    """The recovering server's own settings. The production configuration is set aside:
    its preload libraries, ports and archive_command have no business here."""
    for name in ("postgresql.conf", "postgresql.auto.conf"):
        if (pgdata / name).exists():
            (pgdata / name).rename(pgdata / f"{name}.original")
    (pgdata / "postgresql.auto.conf").write_text("")
    (pgdata / "pg_hba.conf").write_text("local all all trust\n")
    (pgdata / "pg_ident.conf").write_text("")
    settings = {
        "listen_addresses": "",
        "unix_socket_directories": str(work),
        "port": "5432",
        "archive_mode": "off",
        "shared_preload_libraries": "",
        # Off, so a primary with more connections or workers than these defaults replays
        # all the same (hot standby would refuse).
        "hot_standby": "off",
        "restore_command": f'cp "{wal}/%f" "%p"',
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",
    }
    if until is not None:
        settings["recovery_target_time"] = until.isoformat()
    lines = [f"{key} = '{value.replace(chr(39), chr(39) * 2)}'" for key, value in settings.items()]
    (pgdata / "postgresql.conf").write_text("\n".join(lines) + "\n")
    (pgdata / "recovery.signal").write_text("")
    for stale in ("postmaster.pid", "postmaster.opts"):
        (pgdata / stale).unlink(missing_ok=True)


def _server_user(work: Path) -> str | None:
    """As root, the account that runs the server, owning the work directory."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        for path in (work, *work.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return name
    raise BackupError(
        "PostgreSQL does not run as root and no 'postgres' account exists: run the restore "
        "as the account that runs PostgreSQL"
    )


@contextmanager
def _recovery_server(
    tools: PgTools,
    pgdata: Path,
    url: str,
    user: str | None,
    segments: int,
    progress: Progress,
) -> Iterator[None]:
    log = pgdata.parent / "server.log"
    pg_ctl = [tools.program("pg_ctl"), "--pgdata", str(pgdata), "--log", str(log)]
    _as(user, [*pg_ctl, "--no-wait", "start"])
    try:
        _wait_for_promotion(pgdata, url, log, segments, progress)
        yield
    finally:
        _as(user, [*pg_ctl, "--mode=fast", "--wait", "stop"], check=False)


def _wait_for_promotion(
    pgdata: Path, url: str, log: Path, segments: int, progress: Progress
) -> None:
    """Until the server has replayed to the target and accepts connections (with hot
    standby off it refuses them before). Replaying a large archive takes as long as it
    takes: there is no timeout, only progress."""
    restored: set[str] = set()
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        restored.update(_RESTORED.findall(text))
        progress(Tick("recover", len(restored), max(segments, len(restored)), "segments"))
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
                    return
        except psycopg.OperationalError as exc:
            if "does not exist" in str(exc):
                raise BackupError(
                    f"the recovered cluster has no such role or database: {exc}"
                ) from None
        if not (pgdata / "postmaster.pid").exists() and _server_stopped(text):
            raise BackupError(f"recovery failed: {_failure(text)}")
        time.sleep(0.5)


def _server_stopped(log_text: str) -> bool:
    return "database system is shut down" in log_text or "aborting startup" in log_text


def _failure(log_text: str) -> str:
    """The server's own reason, without the refusals our connection attempts caused."""
    lines = [
        line
        for line in log_text.splitlines()
        if ("FATAL" in line or "PANIC" in line)
        and "starting up" not in line
        and "not yet accepting" not in line
    ]
    return " | ".join(lines[-3:]) or log_text[-500:] or "no log"


def _as(user: str | None, args: list[str], *, check: bool = True) -> None:
    answer = subprocess.run(  # noqa: S603 - our own argument list, no shell
        # From / : the caller's working directory may be closed to the server's account.
        args,
        user=user,
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if check and answer.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {answer.stderr.strip()}")
