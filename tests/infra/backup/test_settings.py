"""The backup settings: defaults as the contract states them, and a bad value stops start-up
with one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest

from chainconsult.config import ConfigError
from chainconsult.infra.backup.store import FileStore, open_store, store_url
from tests.conftest import make_settings

URL = "postgresql://x@localhost/x"


def test_defaults_back_up_daily_under_the_data_dir(tmp_path: Path) -> None:
    settings = make_settings(URL, tmp_path)

    assert store_url(settings) == f"file://{tmp_path / 'var' / 'backups'}"
    assert settings.backup.schedule == "37 2 * * *"
    assert settings.backup.retention == "7d,4w,6m"
    assert settings.backup.max_age_hours == 26
    assert settings.backup.encryption_recipient is None
    store = open_store(store_url(settings), settings)
    assert isinstance(store, FileStore)
    assert store.root == tmp_path / "var" / "backups"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BACKUP_URL", "ftp://backups.example.com/x"),
        ("BACKUP_SCHEDULE", "every day"),
        ("BACKUP_SCHEDULE", "61 * * * *"),
        ("BACKUP_MAX_AGE_HOURS", "0"),
        ("BACKUP_ENCRYPTION_RECIPIENT", "age1notakey"),
        ("S3_ENDPOINT_URL", "not a url"),
    ],
)
def test_a_bad_backup_setting_stops_start_up_naming_it(
    name: str, value: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=name):
        make_settings(URL, tmp_path, **{name: value})


def test_an_age_or_ssh_public_key_is_accepted_as_recipient(tmp_path: Path) -> None:
    age = str(pyrage.x25519.Identity.generate().to_public())
    # A public key made by ssh-keygen for this test (age checks it is a curve point).
    ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDycL21Ijpdiy26+GdDNiiE6hpWaFDL0qoE7qO/TsCIm ops"

    for recipient in (age, ssh):
        settings = make_settings(URL, tmp_path, BACKUP_ENCRYPTION_RECIPIENT=recipient)
        assert settings.backup.encryption_recipient == recipient
