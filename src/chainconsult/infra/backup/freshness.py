"""How old the newest verified backup is, for the backup_stale alert and the
chainconsult_backup_last_success_timestamp_seconds gauge: read from the store itself (the
truth, whoever made the backup), at most once a minute per process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from chainconsult.config import Settings
from chainconsult.infra.backup.catalog import backup_store, newest_verified
from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.store import BackupStore

log = structlog.get_logger("chainconsult.backup")


class NewestBackupWatch:
    """Awaited, it answers the creation time (epoch seconds) of the newest verified backup,
    None while none is known. A store that cannot be read keeps the last answer (and logs
    once): an S3 hiccup is not a missing backup."""

    def __init__(
        self,
        settings: Settings,
        *,
        refresh_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.refresh_s = refresh_s
        self.clock = clock
        self._store: BackupStore | None = None
        self._newest: float | None = None
        self._read_at: float | None = None
        self._failing = False

    async def __call__(self) -> float | None:
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.refresh_s:
            self._read_at = now
            try:
                self._newest = await asyncio.to_thread(self._read)
                self._failing = False
            except (BackupError, OSError) as exc:
                if not self._failing:
                    log.warning("backup_store_unreadable", error=str(exc))
                self._failing = True
        return self._newest

    def _read(self) -> float | None:
        if self._store is None:
            self._store = backup_store(self.settings)
        manifest = newest_verified(self._store)
        return manifest.created_at.timestamp() if manifest is not None else None
