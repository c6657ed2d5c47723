"""The three queues and their priorities.

Every worker serves every queue and always takes the due job with the highest priority
first (procrastinate orders by priority, then age), so a critical job deferred behind a
thousand low ones is the next one started. Queues exist for operators: counts, depth
metrics and `chainconsult worker --queue` to dedicate workers."""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    critical = "critical"
    """Alerts, security, and recovering stalled jobs."""
    default = "default"
    """Email and notifications."""
    low = "low"
    """Cleanup and maintenance."""

    @property
    def priority(self) -> int:
        return _PRIORITY[self]


_PRIORITY = {Queue.critical: 100, Queue.default: 50, Queue.low: 0}
