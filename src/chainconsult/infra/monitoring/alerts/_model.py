from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Action = Literal["trigger", "resolve", "acknowledge"]
"""What a notification tells a channel about an alert."""


class Severity(StrEnum):
    critical = "critical"
    """Pages (PagerDuty) and posts to the webhooks."""
    high = "high"
    """Posts to the webhooks."""
    medium = "medium"
    """Dashboard only."""
    low = "low"
    """Dashboard only."""


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def at(seconds: float) -> dt.datetime:
    """A wall-clock reading (``time.time()`` or a test's clock) as an aware datetime."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@dataclass(slots=True)
class AlertRecord:
    """An alert occurrence as the evaluator holds it: in memory first, written to the database
    whenever the database answers (it may be the thing that is down)."""

    fingerprint: str
    rule: str
    severity: Severity
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: AlertStatus = AlertStatus.firing
    first_seen_at: dt.datetime = field(default_factory=utcnow)
    last_seen_at: dt.datetime = field(default_factory=utcnow)
    resolved_at: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: uuid.UUID | None = None
    notified_channels: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "severity": self.severity.value,
            "status": self.status.value,
            "summary": self.summary,
            "details": self.details,
            "first_seen_at": self.first_seen_at,
            "last_seen_at": self.last_seen_at,
            "resolved_at": self.resolved_at,
            "notified_channels": self.notified_channels,
        }

    def to_json(self) -> dict[str, Any]:
        row = self.as_row()
        return {
            **row,
            "id": str(self.id),
            "first_seen_at": self.first_seen_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "acknowledged_at": (self.acknowledged_at.isoformat() if self.acknowledged_at else None),
            "acknowledged_by": str(self.acknowledged_by) if self.acknowledged_by else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertRecord:
        def when(value: str | None) -> dt.datetime | None:
            return dt.datetime.fromisoformat(value) if value else None

        return cls(
            id=uuid.UUID(data["id"]),
            fingerprint=data["fingerprint"],
            rule=data["rule"],
            severity=Severity(data["severity"]),
            summary=data["summary"],
            details=dict(data["details"]),
            status=AlertStatus(data["status"]),
            first_seen_at=dt.datetime.fromisoformat(data["first_seen_at"]),
            last_seen_at=dt.datetime.fromisoformat(data["last_seen_at"]),
            resolved_at=when(data["resolved_at"]),
            acknowledged_at=when(data["acknowledged_at"]),
            acknowledged_by=(
                uuid.UUID(data["acknowledged_by"]) if data["acknowledged_by"] else None
            ),
            notified_channels=list(data["notified_channels"]),
        )

    @classmethod
    def from_row(cls, row: Any) -> AlertRecord:
        return cls(
            id=row.id,
            fingerprint=row.fingerprint,
            rule=row.rule,
            severity=Severity(row.severity),
            summary=row.summary,
            details=dict(row.details or {}),
            status=AlertStatus(row.status),
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            resolved_at=row.resolved_at,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by=row.acknowledged_by,
            notified_channels=list(row.notified_channels or []),
        )
