"""A host's alert state that must outlive the process: alert changes not yet written to the
database (it may be the thing that is down) and notifications not yet delivered.

One JSON file in the data dir (``<data dir>/alerts/spool.json``), changed only under an
exclusive ``flock`` that every process of the host takes, so a restart neither loses an alert
fired while PostgreSQL was down nor notifies its resolution twice, and two server workers never
both fire or resolve one alert while the database cannot decide. A crash loses at most a
notification being sent at that instant (it is sent again: at least once, never lost)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import structlog

from chainconsult.infra.monitoring.alerts._model import Action, AlertRecord, AlertStatus

log = structlog.get_logger("chainconsult.alerts")
T = TypeVar("T")


def snapshot(record: AlertRecord) -> AlertRecord:
    """A copy that later changes to the evaluator's record do not reach."""
    return dataclasses.replace(
        record, details=dict(record.details), notified_channels=list(record.notified_channels)
    )


@dataclass(slots=True)
class Delivery:
    """One notification to one target (PagerDuty, or one webhook URL), about ``alert`` as it
    was when the notification was owed."""

    alert: AlertRecord
    action: Action
    target: str
    created_at: float
    due_at: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0
    claimed_until: float = 0.0
    """While a process is sending it (wall clock): nobody else may; a crashed sender's claim
    runs out and the delivery is taken up again."""
    trace: dict[str, str] | None = None
    """The trace context of what made it owed (a W3C carrier; an admin's acknowledgement), so
    that its HTTP call shows in that request's trace (docs/tracing.md)."""

    @property
    def stream(self) -> tuple[uuid.UUID, str]:
        """Notifications about one alert to one target go out in the order they were owed (a
        resolve must never overtake its trigger)."""
        return self.alert.id, self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alert": self.alert.to_json(),
            "action": self.action,
            "target": self.target,
            "created_at": self.created_at,
            "due_at": self.due_at,
            "attempts": self.attempts,
            "claimed_until": self.claimed_until,
            "trace": self.trace,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            id=data["id"],
            alert=AlertRecord.from_json(data["alert"]),
            action=data["action"],
            target=data["target"],
            created_at=float(data["created_at"]),
            due_at=float(data["due_at"]),
            attempts=int(data["attempts"]),
            claimed_until=float(data["claimed_until"]),
            trace=data.get("trace"),  # absent from a spool written before it existed
        )


@dataclass(slots=True)
class SpoolState:
    records: dict[uuid.UUID, AlertRecord] = field(default_factory=dict)
    """Alert changes the database has not got yet, by alert id."""
    deliveries: list[Delivery] = field(default_factory=list)
    """Notifications owed, oldest first."""

    def transition(
        self, record: AlertRecord, deliveries: list[Delivery]
    ) -> tuple[bool, AlertRecord | None]:
        """Fire or resolve ``record`` here while the database cannot decide. Returns whether
        this call made the transition (then its notifications are owed, in the same write) and,
        when another process of the host fired the same alert first, that alert."""
        if record.status is AlertStatus.firing:
            for other in self.records.values():
                if (
                    other.fingerprint == record.fingerprint
                    and other.status is AlertStatus.firing
                    and other.id != record.id
                ):
                    return False, other
        else:
            known = self.records.get(record.id)
            if known is not None and known.status is AlertStatus.resolved:
                return False, None
        self.records[record.id] = snapshot(record)
        self.deliveries.extend(deliveries)
        return True, None

    def touch(self, record: AlertRecord) -> bool:
        """Keep a firing alert's newer last_seen and summary; False (nothing kept) when it was
        resolved here meanwhile: a touch never brings an alert back."""
        known = self.records.get(record.id)
        if known is not None and known.status is AlertStatus.resolved:
            return False
        self.records[record.id] = snapshot(record)
        return True

    def forget_if_unchanged(self, record: AlertRecord) -> None:
        """Written to the database: drop it, unless another process changed it since."""
        known = self.records.get(record.id)
        if known is not None and known.to_json() == record.to_json():
            del self.records[record.id]

    def claim(self, now: float, until: float) -> list[Delivery]:
        """The deliveries due now whose earlier siblings are done, marked as being sent."""
        blocked: set[tuple[uuid.UUID, str]] = set()
        claimed = []
        for delivery in self.deliveries:
            if delivery.stream in blocked:
                continue
            blocked.add(delivery.stream)
            if delivery.due_at <= now and delivery.claimed_until <= now:
                delivery.claimed_until = until
                claimed.append(dataclasses.replace(delivery))
        return claimed

    def settle(self, outcomes: dict[str, float | None]) -> None:
        """Per delivery id: None when it is done (delivered or given up), else when to retry."""
        kept = []
        for delivery in self.deliveries:
            if delivery.id not in outcomes:
                kept.append(delivery)
                continue
            retry_at = outcomes[delivery.id]
            if retry_at is not None:
                delivery.attempts += 1
                delivery.due_at, delivery.claimed_until = retry_at, 0.0
                kept.append(delivery)
        self.deliveries = kept

    def next_due(self) -> float | None:
        if not self.deliveries:
            return None
        return min(max(d.due_at, d.claimed_until) for d in self.deliveries)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "records": [record.to_json() for record in self.records.values()],
                "deliveries": [delivery.to_json() for delivery in self.deliveries],
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> SpoolState:
        data: dict[str, Any] = orjson.loads(raw)
        records = (AlertRecord.from_json(item) for item in data["records"])
        return cls(
            records={record.id: record for record in records},
            deliveries=[Delivery.from_json(item) for item in data["deliveries"]],
        )


class AlertSpool:
    """``directory`` None keeps the state in this process only (tests, or a data dir that
    cannot be written: then a restart forgets, as before the spool existed)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory = SpoolState()

    async def read(self) -> SpoolState:
        return await self.change(lambda state: state)

    async def change(self, apply: Callable[[SpoolState], T]) -> T:
        """Run ``apply`` on the current state and keep what it changed, atomically for every
        process of the host."""
        if self.directory is None:
            return apply(self._memory)
        try:
            # flock may wait for another process's write: never on the event loop.
            return await asyncio.to_thread(self._change_file, self.directory, apply)
        except OSError as exc:
            log.error("alert_spool_unwritable", path=str(self.directory), error=str(exc))
            self.directory = None
            return apply(self._memory)

    def _change_file(self, directory: Path, apply: Callable[[SpoolState], T]) -> T:
        path = directory / "spool.json"
        with self._locked(directory):
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raw = b""
            state = self._parse(raw, path)
            result = apply(state)
            new = state.to_bytes()
            if new != raw:
                partial = path.with_suffix(".tmp")
                partial.write_bytes(new)
                os.replace(partial, path)
        return result

    @staticmethod
    @contextlib.contextmanager
    def _locked(directory: Path) -> Iterator[None]:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / "spool.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @staticmethod
    def _parse(raw: bytes, path: Path) -> SpoolState:
        if not raw:
            return SpoolState()
        try:
            return SpoolState.from_bytes(raw)
        except (ValueError, KeyError, TypeError) as exc:
            # Keep the damaged file for a human; alerting goes on with an empty spool.
            path.replace(path.with_suffix(".damaged"))
            log.error("alert_spool_damaged", path=str(path), error=str(exc))
            return SpoolState()
