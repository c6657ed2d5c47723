from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import String, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.accounts import Account
from chainconsult.models.jobs import DeliveryStatus, EmailDelivery


def recorded_subject(subject: str) -> str:
    """The subject as the delivery record can hold it: the longest name and title together
    overrun the column, and the email must still go (the message itself keeps it whole)."""
    column = EmailDelivery.__table__.c.subject.type
    limit = column.length if isinstance(column, String) else None
    if limit is None or len(subject) <= limit:
        return subject
    return subject[: limit - 1] + "\u2026"


class EmailDeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_of(self, account_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Which of the accounts are active, each under a share lock that lasts until the
        caller's transaction ends (an erasure locks its account first: it waits for the
        caller, or the caller waits for it and sees the account inactive)."""
        rows = await self.session.execute(
            select(Account.id)
            .where(Account.id.in_(account_ids), Account.is_active)
            .with_for_update(read=True, key_share=True)
        )
        return set(rows.scalars())

    async def claim(
        self,
        *,
        key: str,
        kind: str,
        account_id: uuid.UUID,
        recipient: str,
        subject: str,
        message_id: str,
    ) -> str:
        """Record an attempt for ``key`` and return the status it had before (a new key
        comes back as ``sending``)."""
        statement = (
            insert(EmailDelivery)
            .values(
                idempotency_key=key,
                kind=kind,
                account_id=account_id,
                recipient=recipient,
                subject=recorded_subject(subject),
                message_id=message_id,
                status=DeliveryStatus.sending,
                attempts=1,
            )
            .on_conflict_do_update(
                index_elements=[EmailDelivery.idempotency_key],
                set_={
                    "attempts": EmailDelivery.attempts + 1,
                    "updated_at": func.now(),
                },
            )
            .returning(EmailDelivery.status)
        )
        return str((await self.session.execute(statement)).scalar_one())

    async def finish(self, *, key: str, status: DeliveryStatus, error: str | None) -> None:
        values: dict[str, object] = {
            "status": status,
            "last_error": error,
            "updated_at": func.now(),
        }
        if status is DeliveryStatus.sent:
            values["sent_at"] = func.now()
        await self.session.execute(
            update(EmailDelivery).where(EmailDelivery.idempotency_key == key).values(**values)
        )

    async def note_error(self, *, key: str, error: str) -> None:
        await self.session.execute(
            update(EmailDelivery)
            .where(EmailDelivery.idempotency_key == key)
            .values(last_error=error, updated_at=func.now())
        )
