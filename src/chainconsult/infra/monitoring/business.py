"""Business event counters (``business_events_total{event}``), bumped only once the
transaction that made the event real has committed: a rolled-back request counts nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.db.session import after_commit
from chainconsult.infra.monitoring.metrics import business_events_total

BUSINESS_EVENTS = frozenset(
    {
        "user_registered",
        "expert_application_submitted",
        "expert_approved",
        "project_submitted",
        "proposal_submitted",
        "proposal_accepted",
        "project_completed",
    }
)


def count_after_commit(session: AsyncSession, event: str, amount: int = 1) -> None:
    if event not in BUSINESS_EVENTS:
        raise ValueError(f"unknown business event {event!r}")

    async def bump() -> None:
        business_events_total.labels(event=event).inc(amount)

    after_commit(session, bump)
