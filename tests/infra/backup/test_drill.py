"""The restore drill: the demo data plus writes through the API, backed up with the command
line, the database dropped, restored, and the platform serving it again with every row."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from chainconsult.admin.demo_data import (
    CLIENTS,
    DEMO_DOMAIN,
    DEMO_PASSWORD,
    EXPERTS,
    load_demo_data,
)
from chainconsult.app import create_app
from chainconsult.infra.backup.catalog import backup_store, list_backups, newest_verified
from chainconsult.infra.backup.manifest import dump_key
from chainconsult.infra.backup.service import take_backup, verify_backup
from chainconsult.infra.db.engine import build_engine
from chainconsult.infra.db.migrate import alembic_config
from tests.cli_runner import CliResult, run_cli
from tests.conftest import TEST_SECRET, MigratedDatabases
from tests.helpers import login, register, serving
from tests.infra.backup.conftest import (
    backup_settings,
    execute,
    fingerprint,
    libpq,
)


def cli(*args: str, env: dict[str, str], cwd: Path) -> CliResult:
    return run_cli(*args, env=env, cwd=cwd)


async def cli_in_thread(*args: str, env: dict[str, str], cwd: Path) -> CliResult:
    """The command runs its own event loop, which cannot nest in the test's."""
    return await asyncio.to_thread(run_cli, *args, env=env, cwd=cwd)


@pytest.mark.slow
async def test_a_dropped_database_comes_back_whole_from_its_backup_and_serves(
    migrated_databases: MigratedDatabases, postgres_server_url: str, tmp_path: Path
) -> None:
    sqlalchemy_url = migrated_databases.create("cc_backup")
    url = sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)
    settings = backup_settings(sqlalchemy_url, tmp_path)
    engine = build_engine(settings.database)
    try:
        await load_demo_data(engine, echo=lambda _line: None)
    finally:
        await engine.dispose()
    async with serving(create_app(settings)) as http:
        # Writes on top: an account (with its session and its queued welcome email job).
        await register(http, email="late@example.com", name="Late Comer")
        await login(http, "late@example.com")
    before = fingerprint(url)
    env = {
        "DATABASE_URL": url,
        "CHAINCONSULT_DATA_DIR": str(tmp_path / "var"),
        "SECRET_KEY": TEST_SECRET,
        "BACKUP_URL": f"file://{tmp_path}/store",
        "REDIS_URL": "",
    }

    backed_up = await cli_in_thread("backup", env=env, cwd=tmp_path)
    assert backed_up.returncode == 0, backed_up.stderr
    assert "dump: table 1/" in backed_up.stderr  # progress, table by table
    [listed] = list_backups(backup_store(settings))
    name = url.rsplit("/", 1)[1]
    execute(postgres_server_url, f'DROP DATABASE "{name}" WITH (FORCE)')
    execute(postgres_server_url, f'CREATE DATABASE "{name}"')
    restored = await cli_in_thread("restore", listed.id, "--yes", env=env, cwd=tmp_path)

    assert restored.returncode == 0, restored.stderr
    assert fingerprint(url) == before
    assert before["public.accounts"][0] == EXPERTS + CLIENTS + 1
    assert before["public.procrastinate_jobs"][0] >= 1
    head = ScriptDirectory.from_config(alembic_config(sqlalchemy_url)).get_current_head()
    assert execute(url, "SELECT version_num FROM alembic_version") == [(head,)]
    assert listed.manifest is not None
    assert listed.manifest.schema_revision == head
    async with serving(create_app(settings)) as http:
        await login(http, f"expert000@{DEMO_DOMAIN}", DEMO_PASSWORD)
        await login(http, "late@example.com")
        experts = await http.get("/api/v2/experts")
    assert experts.status_code == 200
    assert len(experts.json()["data"]) > 0


async def test_backup_verify_restores_into_a_scratch_database_and_records_the_drill(
    database_url: str, tmp_path: Path
) -> None:
    settings = backup_settings(database_url, tmp_path)
    async with serving(create_app(settings)) as http:
        await register(http, email="drill@example.com")
    manifest = take_backup(settings)

    checked = verify_backup(settings, manifest.id)

    assert checked.drill is not None
    assert checked.drill.ok, checked.drill.problems
    [listed] = list_backups(backup_store(settings))
    assert listed.manifest == checked
    assert listed.manifest.row_counts["public.accounts"] == 1
    scratch = execute(
        libpq(database_url),
        "SELECT datname FROM pg_database WHERE datname LIKE 'chainconsult_verify_%'",
    )
    assert scratch == []


async def test_a_damaged_backup_fails_its_drill_and_no_longer_counts_as_verified(
    database_url: str, tmp_path: Path
) -> None:
    settings = backup_settings(database_url, tmp_path)
    manifest = take_backup(settings)
    stored = tmp_path / "store" / dump_key(manifest.id, manifest.file)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    checked = verify_backup(settings, manifest.id)

    assert checked.drill is not None
    assert not checked.drill.ok
    assert "damaged" in checked.drill.problems[0]
    assert newest_verified(backup_store(settings)) is None
    listing = await cli_in_thread(
        "backup",
        "list",
        env={"BACKUP_URL": f"file://{tmp_path}/store", "SECRET_KEY": TEST_SECRET},
        cwd=tmp_path,
    )
    assert f"{manifest.id}" in listing.stdout
    assert "drill FAILED" in listing.stdout
