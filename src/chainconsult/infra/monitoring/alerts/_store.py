"""Alert state: kept in memory by the evaluator and written to the ``alerts`` table whenever
the database answers. While PostgreSQL is down the evaluator keeps firing and resolving in
memory; the first write after it comes back stores what happened."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.monitoring.alerts._model import AlertRecord, AlertStatus
from chainconsult.models.monitoring import Alert

_TABLE: Table = Alert.__table__  # type: ignore[assignment]
TOUCH_EVERY = dt.timedelta(seconds=30)
"""How often a still-firing alert's last_seen is written (each evaluation would be noise)."""


class AlertStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.active: dict[str, AlertRecord] = {}
        """Firing alerts by fingerprint."""
        self._unsaved: dict[uuid.UUID, AlertRecord] = {}
        self._saved_at: dict[uuid.UUID, dt.datetime] = {}

    @property
    def unsaved(self) -> int:
        return len(self._unsaved)

    async def refresh(self) -> None:
        """Take the firing alerts from the database (other nodes' work, acknowledgements);
        what this process changed but could not write yet wins until it is written."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_TABLE).where(_TABLE.c.status == "firing"))).all()
        active = {row.fingerprint: AlertRecord.from_row(row) for row in rows}
        for record in self._unsaved.values():
            if record.status is AlertStatus.firing:
                active[record.fingerprint] = record
            elif active.get(record.fingerprint, record).id == record.id:
                active.pop(record.fingerprint, None)
        self.active = active

    def remember(self, record: AlertRecord) -> None:
        """A change to write later (the database is down)."""
        self._unsaved[record.id] = record
        if record.status is AlertStatus.firing:
            self.active[record.fingerprint] = record
        elif self.active.get(record.fingerprint) is record:
            del self.active[record.fingerprint]

    def needs_touch(self, record: AlertRecord) -> bool:
        saved = self._saved_at.get(record.id)
        return saved is None or record.last_seen_at - saved >= TOUCH_EVERY

    async def save(self, record: AlertRecord) -> bool:
        """Write one change. True when this process made the transition: it inserted the
        firing row, or moved the row from firing to resolved. False when another node already
        had (then that node notifies, not this one)."""
        self.remember(record)
        row = record.as_row()
        async with self.engine.begin() as conn:
            if record.status is AlertStatus.resolved:
                changed = await conn.execute(
                    update(_TABLE)
                    .where(_TABLE.c.id == record.id, _TABLE.c.status == "firing")
                    .values(
                        status="resolved",
                        resolved_at=record.resolved_at,
                        last_seen_at=record.last_seen_at,
                    )
                )
                owned = changed.rowcount == 1
                if not owned:
                    # Never written (fired and resolved while the database was down), or
                    # resolved by another node already: insert keeps the history, once.
                    inserted = await conn.execute(
                        insert(_TABLE).values(**row).on_conflict_do_nothing().returning(_TABLE.c.id)
                    )
                    owned = inserted.first() is not None
            else:
                changed = await conn.execute(
                    update(_TABLE)
                    .where(_TABLE.c.id == record.id)
                    .values(
                        last_seen_at=record.last_seen_at,
                        summary=record.summary,
                        details=record.details,
                        notified_channels=record.notified_channels,
                    )
                )
                owned = False
                if changed.rowcount == 0:
                    inserted = await conn.execute(
                        insert(_TABLE).values(**row).on_conflict_do_nothing().returning(_TABLE.c.id)
                    )
                    owned = inserted.first() is not None
                    if not owned:
                        # Another node's row for this fingerprint is firing: adopt it.
                        self.active.pop(record.fingerprint, None)
        self._unsaved.pop(record.id, None)
        self._saved_at[record.id] = record.last_seen_at
        if record.status is AlertStatus.resolved:
            self._saved_at.pop(record.id, None)
        return owned

    async def flush(self) -> None:
        for record in list(self._unsaved.values()):
            await self.save(record)
