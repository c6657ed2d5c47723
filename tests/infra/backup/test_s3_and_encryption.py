"""Backups through s3:// against an S3-compatible server started by the test, and backups
encrypted to an age recipient, which nobody restores without the identity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.backup.catalog import backup_store, list_backups
from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.service import plan_restore, restore_backup, take_backup
from tests.helpers import register, serving
from tests.infra.backup.conftest import NewDatabase, backup_settings, fingerprint, libpq
from tests.infra.backup.s3 import S3Server, s3_server

BUCKET = "chainconsult-backups"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        client: Any = server.client()
        client.create_bucket(Bucket=BUCKET)
        yield server


def s3_settings(database_url: str, tmp_path: Path, s3: S3Server, **env: str | None) -> Settings:
    return backup_settings(
        database_url,
        tmp_path,
        BACKUP_URL=f"s3://{BUCKET}/{tmp_path.name}/nightly",
        S3_ENDPOINT_URL=s3.endpoint_url,
        S3_REGION="us-east-1",
        **env,
    )


async def test_a_backup_goes_to_s3_and_comes_back_whole(
    database_url: str, new_database: NewDatabase, tmp_path: Path, s3: S3Server
) -> None:
    settings = s3_settings(database_url, tmp_path, s3)
    async with serving(create_app(settings)) as http:
        for n in range(3):
            await register(http, email=f"s3-{n}@example.com")
    before = fingerprint(database_url)
    manifest = take_backup(settings)
    keys = [
        item["Key"]
        for item in s3.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{tmp_path.name}/")[  # type: ignore[attr-defined]
            "Contents"
        ]
    ]
    target = new_database()

    restore_backup(settings, plan_restore(settings, manifest.id, libpq(target)))

    assert sorted(keys) == [
        f"{tmp_path.name}/nightly/dumps/{manifest.id}/database.dump",
        f"{tmp_path.name}/nightly/dumps/{manifest.id}/manifest.json",
    ]
    assert [item.id for item in list_backups(backup_store(settings))] == [manifest.id]
    assert fingerprint(target) == before
    assert before["public.accounts"][0] == 3


async def test_an_encrypted_backup_cannot_be_restored_without_its_identity(
    database_url: str, new_database: NewDatabase, tmp_path: Path, s3: S3Server
) -> None:
    identity = pyrage.x25519.Identity.generate()
    stranger = pyrage.x25519.Identity.generate()
    (tmp_path / "backup.key").write_text(f"# created: today\n{identity}\n")
    (tmp_path / "other.key").write_text(f"{stranger}\n")
    settings = s3_settings(
        database_url, tmp_path, s3, BACKUP_ENCRYPTION_RECIPIENT=str(identity.to_public())
    )
    async with serving(create_app(settings)) as http:
        await register(http, email="secret@example.com")
    before = fingerprint(database_url)
    manifest = take_backup(settings)
    stored = (
        s3.client()
        .get_object(  # type: ignore[attr-defined]
            Bucket=BUCKET, Key=f"{tmp_path.name}/nightly/dumps/{manifest.id}/database.dump.age"
        )["Body"]
        .read()
    )
    target = new_database()
    plan = plan_restore(settings, manifest.id, libpq(target))

    with pytest.raises(BackupError, match="encrypted: pass the age identity"):
        restore_backup(settings, plan)
    with pytest.raises(BackupError, match="cannot decrypt"):
        restore_backup(settings, plan, identity=tmp_path / "other.key")
    assert fingerprint(target) == {}
    restore_backup(settings, plan, identity=tmp_path / "backup.key")

    assert stored.startswith(b"age-encryption.org/v1")
    assert b"secret@example.com" not in stored
    assert manifest.encrypted_to == str(identity.to_public())
    assert fingerprint(target) == before
