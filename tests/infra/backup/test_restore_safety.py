"""A restore never destroys by surprise: a target holding tables needs --force, the command
asks before it runs unless --yes, and a restore that fails half-way changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainconsult.infra.backup.dump import dump_database
from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.restore import restore_dump
from chainconsult.infra.backup.service import plan_restore, restore_backup, take_backup
from tests.infra.backup.conftest import NewDatabase, backup_settings, execute, fingerprint, libpq
from tests.infra.backup.test_drill import cli


def with_notes(url: str, *bodies: str) -> None:
    execute(url, "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    values = ", ".join(f"('{body}')" for body in bodies)
    execute(url, f"INSERT INTO notes (body) VALUES {values}")


@pytest.mark.slow
def test_restore_refuses_a_target_with_tables_without_force_and_leaves_it_alone(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    source, target = new_database(), new_database()
    with_notes(source, "from the backup")
    with_notes(target, "precious")
    settings = backup_settings(source, tmp_path)
    manifest = take_backup(settings)
    env = {
        "DATABASE_URL": source,
        "BACKUP_URL": f"file://{tmp_path}/store",
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
    }

    refused = cli("restore", manifest.id, "--to", target, "--yes", env=env, cwd=tmp_path)

    assert refused.returncode == 2
    assert (
        "is not empty (tables and views: 1): pass --force to replace everything in it"
        in refused.stderr
    )
    assert execute(target, "SELECT body FROM notes") == [("precious",)]


def test_restore_asks_for_confirmation_unless_told_yes(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    source, target = new_database(), new_database()
    with_notes(source, "from the backup")
    manifest = take_backup(backup_settings(source, tmp_path))
    env = {"DATABASE_URL": source, "BACKUP_URL": f"file://{tmp_path}/store"}

    unconfirmed = cli("restore", manifest.id, "--to", target, env=env, cwd=tmp_path)

    assert unconfirmed.returncode == 2
    assert "pass --yes to restore" in unconfirmed.stderr
    assert fingerprint(target) == {}


def test_force_replaces_everything_even_tables_the_backup_never_had(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    source, target = new_database(), new_database()
    with_notes(source, "one", "two")
    with_notes(target, "stale")
    execute(target, "CREATE TABLE left_by_a_bad_migration (id int)")
    settings = backup_settings(source, tmp_path)
    manifest = take_backup(settings)

    restore_backup(settings, plan_restore(settings, manifest.id, libpq(target)), force=True)

    assert fingerprint(target) == fingerprint(source)
    assert execute(target, "SELECT body FROM notes ORDER BY id") == [("one",), ("two",)]


def test_a_restore_that_fails_half_way_leaves_the_target_as_it_was(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    source, target = new_database(), new_database()
    with_notes(source, *(f"note {n} " + "x" * 200 for n in range(2000)))
    with_notes(target, "precious")
    dump = tmp_path / "database.dump"
    dump_database(libpq(source), dump)
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) * 2 // 3])  # a disk that filled up, a cut transfer
    before = fingerprint(target)

    with pytest.raises(BackupError, match="pg_restore failed; nothing was restored"):
        restore_dump(dump, libpq(target), replace=True, dumped_with=0, tables=1)

    assert fingerprint(target) == before
