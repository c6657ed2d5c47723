"""Alert state: the ``alerts`` table decides, whenever the database answers, who fired or
resolved an alert (one firing row per fingerprint, a conditional firing-to-resolved update).
While PostgreSQL is down the host's spool decides instead and keeps the changes; the first
evaluation after the database is back writes them, once, whichever process does it and
however often the processes restarted meanwhile."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

import structlog
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from chainconsult.infra.monitoring.alerts._model import AlertRecord, AlertStatus
from chainconsult.infra.monitoring.alerts._spool import AlertSpool, Delivery, SpoolState
from chainconsult.infra.monitoring.models import Alert

log = structlog.get_logger("chainconsult.alerts")
_TABLE: Table = Alert.__table__  # type: ignore[assignment]
TOUCH_EVERY = dt.timedelta(seconds=30)
"""How often a still-firing alert's last_seen is written (each evaluation would be noise)."""


class AlertStore:
    def __init__(self, engine: AsyncEngine, spool: AlertSpool | None = None) -> None:
        self.engine = engine
        self.spool = spool or AlertSpool(None)
        self.active: dict[str, AlertRecord] = {}
        """Firing alerts by fingerprint."""
        self._saved_at: dict[uuid.UUID, dt.datetime] = {}

    async def sync(self, *, database_ok: bool) -> None:
        """Bring ``active`` up to date: write what the spool keeps and read the firing alerts
        back (other nodes' work, acknowledgements) when the database answers; otherwise take
        in what other processes of this host changed in the spool."""
        if database_ok:
            try:
                await self.flush()
                await self.refresh()
                return
            except Exception as exc:
                # The probe passed a moment ago; this write did not. Keep it for next time.
                log.warning("alert_store_unavailable", error=type(exc).__name__)
        self._overlay(await self.spool.read(), self.active)

    async def refresh(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_TABLE).where(_TABLE.c.status == "firing"))).all()
        active = {row.fingerprint: AlertRecord.from_row(row) for row in rows}
        # What this host changed but could not write yet wins until it is written.
        self._overlay(await self.spool.read(), active)
        self.active = active

    @staticmethod
    def _overlay(state: SpoolState, active: dict[str, AlertRecord]) -> None:
        for record in state.records.values():
            if record.status is AlertStatus.firing:
                active[record.fingerprint] = record
            elif active.get(record.fingerprint, record).id == record.id:
                active.pop(record.fingerprint, None)

    async def flush(self) -> None:
        """Write every change the spool keeps."""
        for record in list((await self.spool.read()).records.values()):
            await self.save(record)
            await self.spool.change(
                functools.partial(SpoolState.forget_if_unchanged, record=record)
            )

    async def transition(
        self, record: AlertRecord, *, database_ok: bool, deliveries: list[Delivery]
    ) -> bool:
        """Store a firing or a resolution. True when this process made it: then
        ``deliveries`` are owed in the spool. False when another process already had."""
        if database_ok:
            try:
                owned = await self.save(record)
            except Exception as exc:
                log.warning("alert_store_unavailable", error=type(exc).__name__)
            else:
                if owned and deliveries:
                    await self.spool.change(lambda state: state.deliveries.extend(deliveries))
                self._settle(record, owned, None)
                return owned
        owned, firing = await self.spool.change(lambda state: state.transition(record, deliveries))
        self._settle(record, owned, firing)
        return owned

    def _settle(self, record: AlertRecord, owned: bool, other: AlertRecord | None) -> None:
        if record.status is AlertStatus.resolved:
            if self.active.get(record.fingerprint, record).id == record.id:
                self.active.pop(record.fingerprint, None)
        elif owned:
            self.active[record.fingerprint] = record
        elif other is not None:
            self.active[record.fingerprint] = other

    async def touch(self, record: AlertRecord, *, database_ok: bool) -> None:
        """Write a firing alert's last_seen and summary, now and then."""
        saved = self._saved_at.get(record.id)
        if saved is not None and record.last_seen_at - saved < TOUCH_EVERY:
            return
        if database_ok:
            try:
                await self.save(record)
                return
            except Exception as exc:
                log.warning("alert_store_unavailable", error=type(exc).__name__)
        if await self.spool.change(lambda state: state.touch(record)):
            self._saved_at[record.id] = record.last_seen_at
        elif self.active.get(record.fingerprint) is record:
            # Resolved by another process of this host while we looked.
            del self.active[record.fingerprint]

    async def save(self, record: AlertRecord) -> bool:
        """Write one change. True when this call made the transition: it inserted the firing
        row, or moved the row from firing to resolved. False when another node already had
        (then that node notifies, not this one)."""
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
                    if not owned and self.active.get(record.fingerprint) is record:
                        # Another node's row for this fingerprint is firing: adopt it.
                        del self.active[record.fingerprint]
        self._saved_at[record.id] = record.last_seen_at
        if record.status is AlertStatus.resolved:
            self._saved_at.pop(record.id, None)
        return owned
