"""How old the newest verified backup is, for the backup_stale alert and the
chainconsult_backup_last_success_timestamp_seconds gauge: read from the store itself (the
truth, whoever made the backup), at most once a minute per process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from chainconsult.infra.backup.catalog import backup_store, newest_verified
from chainconsult.infra.backup.store import BackupStore
from chainconsult.infra.settings.platform import PlatformSettings

log = structlog.get_logger("chainconsult.backup")


class NewestBackupWatch:
    """Awaited, it answers the creation time (epoch seconds) of the newest verified backup,
    None while none is known.

    The alert evaluator awaits it on every tick, and that tick must also notice a database
    outage in time: a store that answers slowly is waited for ``wait_s`` at most (the read
    goes on in a thread and its answer is used by a later tick), and one that fails keeps the
    last answer and logs once. An S3 hiccup is not a missing backup."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        refresh_s: float = 60.0,
        wait_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.refresh_s = refresh_s
        self.wait_s = wait_s
        self.clock = clock
        self._store: BackupStore | None = None
        self._newest: float | None = None
        self._read_at: float | None = None
        self._reading: asyncio.Future[float | None] | None = None
        self._failing = False

    async def __call__(self) -> float | None:
        now = self.clock()
        due = self._read_at is None or now - self._read_at >= self.refresh_s
        if self._reading is None and due:
            self._read_at = now
            self._reading = asyncio.ensure_future(asyncio.to_thread(self._read))
        if self._reading is not None:
            done, _ = await asyncio.wait({self._reading}, timeout=self.wait_s)
            if done:
                reading, self._reading = self._reading, None
                self._take(reading)
        return self._newest

    def _take(self, reading: asyncio.Future[float | None]) -> None:
        try:
            self._newest = reading.result()
            self._failing = False
        # Whatever the store or its client raises (a bad region, refused credentials), the
        # evaluator must go on evaluating the other rules.
        except Exception as exc:
            if not self._failing:
                log.warning("backup_store_unreadable", error=str(exc))
            self._failing = True

    def _read(self) -> float | None:
        if self._store is None:
            self._store = backup_store(self.settings)
        manifest = newest_verified(self._store)
        return manifest.created_at.timestamp() if manifest is not None else None
