"""The backup operations, as the command line and the scheduled job run them: take a backup,
verify it (a restore drill), restore it (from a dump, or to a point in time). Listing and
pruning: catalog.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chainconsult import __version__
from chainconsult.infra.backup.catalog import backup_store, load_manifest
from chainconsult.infra.backup.dump import DatabaseFacts, dump_database
from chainconsult.infra.backup.encryption import decrypt_file, encrypt_file
from chainconsult.infra.backup.errors import BackupError, DamagedBackup
from chainconsult.infra.backup.libpq import describe
from chainconsult.infra.backup.manifest import (
    MANIFEST,
    Drill,
    Manifest,
    dump_key,
    new_backup_id,
)
from chainconsult.infra.backup.pitr import BaseBackup, find_base_backup, recover_and_dump
from chainconsult.infra.backup.progress import Progress, Tick, silent
from chainconsult.infra.backup.restore import Target, compare, inspect_target, restore_dump
from chainconsult.infra.backup.store import BackupStore
from chainconsult.infra.settings.platform import PlatformSettings

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def _scratch(settings: PlatformSettings) -> Iterator[Path]:
    """A private directory for dumps on their way, under the data dir: /tmp is often a
    small RAM disk, and a dump is as large as the database."""
    parent = settings.app.data_dir / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="backup-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def take_backup(
    settings: PlatformSettings,
    *,
    to: str | None = None,
    progress: Progress = silent,
    clock: Clock = utcnow,
) -> Manifest:
    """Dump the configured database, encrypt it when a recipient is set, store it, read the
    stored copy back, and write the manifest last."""
    store = backup_store(settings, to)
    recipient = settings.backup.encryption_recipient
    seconds: dict[str, float] = {}
    with _scratch(settings) as work:
        started = time.monotonic()
        dumped = work / "database.dump"
        result = dump_database(
            settings.database.libpq_url(), dumped, progress=progress, clock=clock
        )
        seconds["dump"] = time.monotonic() - started
        stored, name = dumped, "database.dump"
        if recipient is not None:
            started = time.monotonic()
            progress(Tick("encrypt", dumped.stat().st_size))
            stored, name = work / "database.dump.age", "database.dump.age"
            encrypt_file(dumped, stored, recipient)
            dumped.unlink()
            seconds["encrypt"] = time.monotonic() - started
        digest = sha256_of(stored)
        backup_id = new_backup_id(result.taken_at)
        key = dump_key(backup_id, name)
        started = time.monotonic()
        store.put_file(key, stored, progress)
        seconds["upload"] = time.monotonic() - started
        started = time.monotonic()
        _check_stored(store, key, digest, work / "check", progress)
        seconds["check"] = time.monotonic() - started
        manifest = Manifest(
            id=backup_id,
            created_at=result.taken_at,
            database=result.database,
            server_version=result.facts.server_version,
            file=name,
            size=stored.stat().st_size,
            sha256=digest,
            encrypted_to=recipient,
            schema_revision=result.facts.schema_revision,
            row_counts=result.facts.row_counts,
            tools={"pg_dump": result.tools.version, "chainconsult": __version__},
            seconds={step: round(value, 3) for step, value in seconds.items()},
            verified_at=clock(),
        )
    store.put_bytes(dump_key(backup_id, MANIFEST), manifest.to_json())
    return manifest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_stored(
    store: BackupStore, key: str, expected: str, scratch: Path, progress: Progress
) -> None:
    """Read the stored object back, whole, and compare its SHA-256."""

    def relabel(tick: Tick) -> None:
        progress(replace(tick, step="check"))

    local = store.local_path(key)
    if local is None:
        store.get_file(key, scratch, relabel)
        local = scratch
    found = sha256_of(local)
    scratch.unlink(missing_ok=True)
    if found != expected:
        raise BackupError(
            f"the stored copy of {key} differs from what was written (SHA-256 {found[:12]}..., "
            f"expected {expected[:12]}...): the store is unreliable; nothing was recorded"
        )


def fetch_dump(
    store: BackupStore,
    manifest: Manifest,
    work: Path,
    *,
    identity: Path | None,
    progress: Progress,
) -> Path:
    """The backup's plain dump file in ``work``, its checksum checked and decrypted."""
    if manifest.encrypted_to is not None and identity is None:
        raise BackupError(
            f"backup {manifest.id} is encrypted: pass the age identity (private key) file "
            "with --identity"
        )
    fetched = work / manifest.file
    store.get_file(dump_key(manifest.id, manifest.file), fetched, progress)
    found = sha256_of(fetched)
    if found != manifest.sha256:
        raise DamagedBackup(
            f"backup {manifest.id} is damaged: its SHA-256 is {found[:12]}..., the manifest "
            f"says {manifest.sha256[:12]}..."
        )
    if manifest.encrypted_to is None:
        return fetched
    plain = work / "database.dump"
    progress(Tick("decrypt", fetched.stat().st_size))
    decrypt_file(fetched, plain, identity)
    fetched.unlink()
    return plain


def verify_backup(
    settings: PlatformSettings,
    backup_id: str,
    *,
    identity: Path | None = None,
    progress: Progress = silent,
    clock: Clock = utcnow,
) -> Manifest:
    """Restore the backup into a scratch database on the configured server, compare its row
    counts and schema revision with the manifest, drop it, and record the outcome in the
    manifest (a failed drill keeps the backup from counting as verified)."""
    store = backup_store(settings)
    manifest = load_manifest(store, backup_id)
    started = time.monotonic()
    problems: list[str]
    with _scratch(settings) as work:
        try:
            dump = fetch_dump(store, manifest, work, identity=identity, progress=progress)
        except DamagedBackup as exc:
            problems = [str(exc)]
        else:
            with _scratch_database(settings.database.libpq_url()) as scratch_url:
                found = restore_dump(
                    dump,
                    scratch_url,
                    replace=False,
                    dumped_with=manifest.pg_dump_major,
                    tables=len(manifest.row_counts),
                    progress=progress,
                )
            problems = compare(manifest.row_counts, manifest.schema_revision, found)
    drill = Drill(
        at=clock(), ok=not problems, seconds=round(time.monotonic() - started, 3), problems=problems
    )
    checked = replace(manifest, drill=drill)
    store.put_bytes(dump_key(backup_id, MANIFEST), checked.to_json())
    return checked


@contextlib.contextmanager
def _scratch_database(url: str) -> Iterator[str]:
    name = f"chainconsult_verify_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise BackupError(
            f"`backup verify` restores into a scratch database and could not create one ({exc}); "
            "the database role needs the CREATEDB privilege"
        ) from None
    params = conninfo_to_dict(url)
    params["dbname"] = name
    try:
        yield make_conninfo("", **params)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What a restore would do, for the operator to confirm."""

    source: Manifest | BaseBackup
    target_url: str
    target: Target

    @property
    def target_text(self) -> str:
        return describe(self.target_url)

    def check(self, *, force: bool) -> None:
        """Refuse a target that holds tables, unless forced."""
        count = self.target.tables
        if count and not force:
            raise BackupError(
                f"the {self.target_text} is not empty (tables and views: {count}): pass "
                "--force to replace everything in it"
            )

    @property
    def source_text(self) -> str:
        if isinstance(self.source, Manifest):
            taken = self.source.created_at.astimezone(dt.UTC)
            return (
                f"backup {self.source.id} of {taken:%Y-%m-%d %H:%M:%S} UTC "
                f"({self.source.rows} rows in {len(self.source.row_counts)} tables)"
            )
        return f"base backup {self.source.id} and the WAL archive"


def plan_restore(settings: PlatformSettings, backup_id: str, target_url: str) -> RestorePlan:
    store = backup_store(settings)
    base = find_base_backup(store, backup_id)
    source: Manifest | BaseBackup = base if base is not None else load_manifest(store, backup_id)
    return RestorePlan(source, target_url, inspect_target(target_url))


def restore_backup(
    settings: PlatformSettings,
    plan: RestorePlan,
    *,
    until: dt.datetime | None = None,
    force: bool = False,
    identity: Path | None = None,
    progress: Progress = silent,
) -> DatabaseFacts:
    """Restore as planned and return what the target then holds; raises when that differs
    from what the backup recorded."""
    plan.check(force=force)
    store = backup_store(settings)
    replace_all = plan.target.tables > 0
    with _scratch(settings) as work:
        if isinstance(plan.source, Manifest):
            if until is not None:
                raise BackupError(
                    f"{plan.source.id} is a logical backup: --until needs a base backup "
                    "(see docs/disaster-recovery.md, point-in-time recovery)"
                )
            manifest = plan.source
            dump = fetch_dump(store, manifest, work, identity=identity, progress=progress)
            expected, revision = manifest.row_counts, manifest.schema_revision
            dumped_with = manifest.pg_dump_major
        else:
            database, role = _source_database(settings, plan.target_url)
            dump = work / "recovered.dump"
            result = recover_and_dump(
                store,
                plan.source,
                until=until,
                database=database,
                role=role,
                dump_to=dump,
                progress=progress,
            )
            expected, revision = result.facts.row_counts, result.facts.schema_revision
            dumped_with = result.tools.major
        found = restore_dump(
            dump,
            plan.target_url,
            replace=replace_all,
            dumped_with=dumped_with,
            tables=len(expected),
            progress=progress,
        )
    problems = compare(expected, revision, found)
    if problems:
        raise BackupError("the restored database differs from the backup: " + "; ".join(problems))
    return found


def _source_database(settings: PlatformSettings, target_url: str) -> tuple[str, str]:
    """The database (and a role that may read it) to take out of the recovered cluster: the
    configured one, else the target's name."""
    url = settings.database.libpq_url() if settings.database.url is not None else target_url
    params = conninfo_to_dict(url)
    return str(params.get("dbname") or "postgres"), str(params.get("user") or "postgres")
