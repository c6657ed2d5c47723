"""Queue a notification (and with it, its email job) the way the marketplace does, for tests
of email delivery that do not need a whole marketplace story."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.models import Account
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from tests.infra.jobs.conftest import query

APPROVED = {
    "application_id": "0b8f3f5e-8d7e-4c55-a0e8-3f4a1f6c2d10",
    "decision": "approved",
    "note": "Strong Solidity portfolio.",
}


@dataclass(frozen=True)
class Queued:
    account_id: uuid.UUID
    notification_id: uuid.UUID
    job_id: int

    @property
    def key(self) -> str:
        """The idempotency key of its email."""
        return f"notification:{self.notification_id}"


async def add_account(
    sessionmaker: async_sessionmaker[AsyncSession], *, email: str, name: str = "Grace Hopper"
) -> uuid.UUID:
    async with sessionmaker() as session, session.begin():
        account = Account(
            email=email, password_hash="x", display_name=name, role="client", plan="free"
        )
        session.add(account)
        await session.flush()
        return account.id


async def notify(
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    *,
    to: str | uuid.UUID = "grace@example.com",
    name: str = "Grace Hopper",
    kind: NotificationKind = NotificationKind.application_decided,
    payload: dict[str, Any] | None = None,
) -> Queued:
    """Notify ``to`` (a new account's address, or an existing account's id) in one
    transaction, as a service does; returns the notification and its email job."""
    account_id = (
        to if isinstance(to, uuid.UUID) else await add_account(sessionmaker, email=to, name=name)
    )
    async with sessionmaker() as session, session.begin():
        [notification_id] = await NotificationService(session).notify(
            recipients=[account_id], kind=kind, payload=payload or APPROVED
        )
    [job] = query(
        database_url,
        "SELECT id FROM procrastinate_jobs WHERE args->>'notification_id' = %(id)s",
        {"id": str(notification_id)},
    )
    return Queued(account_id, notification_id, int(job["id"]))
