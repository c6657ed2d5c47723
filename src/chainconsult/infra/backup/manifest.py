"""What a backup holds and how to check it, stored as JSON next to the dump.

Layout of a store: ``dumps/<id>/database.dump[.age]`` and ``dumps/<id>/manifest.json`` for
the logical backups this package makes; ``base/<id>/`` (pg_basebackup's tar output) and
``wal/`` (archive_command's segments) for point-in-time recovery, which operators of their
own PostgreSQL set up (docs/disaster-recovery.md). The manifest is written last, after the
stored dump was read back and its SHA-256 matched: a backup without one is incomplete."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

DUMPS = "dumps/"
BASE = "base/"
WAL = "wal/"
MANIFEST = "manifest.json"


def new_backup_id(at: dt.datetime) -> str:
    """Sortable by time and readable: ``20260614T023700Z-3f9a``."""
    return f"{at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def dump_key(backup_id: str, name: str) -> str:
    return f"{DUMPS}{backup_id}/{name}"


@dataclass(frozen=True, slots=True)
class Drill:
    """The outcome of `backup verify`: the dump restored into a scratch database and
    compared with the manifest."""

    at: dt.datetime
    ok: bool
    seconds: float
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    created_at: dt.datetime
    """When the dump's snapshot was taken: the data is as of this instant."""
    database: str
    server_version: str
    file: str
    """Name of the dump object in the backup's directory."""
    size: int
    sha256: str
    """Of the stored object (encrypted, when it is)."""
    encrypted_to: str | None
    schema_revision: str | None
    """Alembic revision of the app schema."""
    row_counts: dict[str, int]
    """Rows per table (schema.table), counted in the dump's own snapshot."""
    tools: dict[str, str]
    """Versions of the programs that made it (pg_dump, chainconsult)."""
    seconds: dict[str, float]
    """Duration of each step (dump, encrypt, upload, check)."""
    verified_at: dt.datetime
    """When the stored copy was read back and its SHA-256 matched."""
    drill: Drill | None = None
    format: int = 1

    @property
    def pg_dump_major(self) -> int:
        return int(self.tools.get("pg_dump", "0").split(".")[0])

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw: dict[str, Any] = orjson.loads(data)
        drill = raw.pop("drill", None)
        for name in ("created_at", "verified_at"):
            raw[name] = dt.datetime.fromisoformat(raw[name])
        if drill is not None:
            drill["at"] = dt.datetime.fromisoformat(drill["at"])
            raw["drill"] = Drill(**drill)
        return cls(**raw)
