"""What a backup store holds: the backups and their manifests, the newest verified one, and
what the retention rule prunes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.manifest import BASE, DUMPS, MANIFEST, Manifest, dump_key
from chainconsult.infra.backup.retention import RetentionRule
from chainconsult.infra.backup.store import BackupStore, StoredObject, open_store, store_url
from chainconsult.infra.settings.platform import PlatformSettings

INCOMPLETE_AFTER = dt.timedelta(days=1)
"""A dump without a manifest this old is the leftover of a run that died; pruning deletes it
(a younger one may be a backup still uploading)."""


@dataclass(frozen=True, slots=True)
class Listed:
    id: str
    kind: Literal["dump", "base"]
    size: int
    modified: dt.datetime
    manifest: Manifest | None = None


def backup_store(settings: PlatformSettings, url: str | None = None) -> BackupStore:
    return open_store(url or store_url(settings), settings)


def list_backups(store: BackupStore) -> list[Listed]:
    """Every backup in the store, oldest first: logical dumps with their manifests, and the
    operator's base backups for point-in-time recovery."""
    listed: list[Listed] = []
    for kind, prefix in (("dump", DUMPS), ("base", BASE)):
        groups: dict[str, list[StoredObject]] = {}
        for stored in store.objects(prefix):
            backup_id = stored.key[len(prefix) :].split("/", 1)[0]
            groups.setdefault(backup_id, []).append(stored)
        for backup_id, objects in groups.items():
            manifest = None
            if kind == "dump":
                manifest = _read_manifest(store, backup_id)
            listed.append(
                Listed(
                    id=backup_id,
                    kind=kind,  # type: ignore[arg-type]
                    size=sum(stored.size for stored in objects),
                    modified=max(stored.modified for stored in objects),
                    manifest=manifest,
                )
            )
    return sorted(
        listed, key=lambda item: item.manifest.created_at if item.manifest else item.modified
    )


def _read_manifest(store: BackupStore, backup_id: str) -> Manifest | None:
    data = store.get_bytes(dump_key(backup_id, MANIFEST))
    if data is None:
        return None
    try:
        return Manifest.from_json(data)
    except (ValueError, KeyError, TypeError):
        return None


def load_manifest(store: BackupStore, backup_id: str) -> Manifest:
    manifest = _read_manifest(store, backup_id)
    if manifest is None:
        if store.objects(f"{DUMPS}{backup_id}/"):
            raise BackupError(f"backup {backup_id} is incomplete (it has no manifest)")
        raise BackupError(
            f"no backup {backup_id} in {store.url}; `chainconsult backup list` shows them"
        )
    return manifest


def newest_verified(store: BackupStore) -> Manifest | None:
    """The newest complete backup whose restore drill, if one ran, passed."""
    ids = sorted(
        {stored.key[len(DUMPS) :].split("/", 1)[0] for stored in store.objects(DUMPS)},
        reverse=True,
    )
    for backup_id in ids:
        manifest = _read_manifest(store, backup_id)
        if manifest is not None and (manifest.drill is None or manifest.drill.ok):
            return manifest
    return None


def prune(store: BackupStore, rule: RetentionRule, *, now: dt.datetime) -> list[str]:
    """Delete the logical backups the retention rule does not keep, and leftovers of runs
    that died; returns the ids deleted. Base backups and WAL are the operator's to prune."""
    dumps = [item for item in list_backups(store) if item.kind == "dump"]
    complete = [item for item in dumps if item.manifest is not None]
    kept = rule.keep(item.manifest.created_at for item in complete if item.manifest)
    doomed = {
        item.id for item in complete if item.manifest and item.manifest.created_at not in kept
    }
    doomed |= {
        item.id
        for item in dumps
        if item.manifest is None and now - item.modified > INCOMPLETE_AFTER
    }
    keys = [
        stored.key
        for stored in store.objects(DUMPS)
        if stored.key[len(DUMPS) :].split("/", 1)[0] in doomed
    ]
    store.delete(keys)
    return sorted(doomed)
