from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.base import utcnow
from chainconsult.models.notifications import Notification


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(
        self, recipients: Sequence[uuid.UUID], kind: str, payload: dict[str, Any]
    ) -> list[uuid.UUID]:
        if not recipients:
            return []
        now = utcnow()
        ids = [uuid.uuid4() for _ in recipients]
        rows = [
            {
                "id": note_id,
                "recipient_id": recipient,
                "kind": kind,
                "payload": payload,
                "created_at": now,
            }
            for note_id, recipient in zip(ids, recipients, strict=True)
        ]
        # One multi-row INSERT however many experts a new project matches.
        await self.session.execute(insert(Notification), rows)
        return ids

    async def page(
        self,
        recipient_id: uuid.UUID,
        *,
        unread_only: bool,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Notification]:
        query = select(Notification).where(Notification.recipient_id == recipient_id)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        if after is not None:
            query = query.where(tuple_(Notification.created_at, Notification.id) < after)
        query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
        return list((await self.session.execute(query.limit(limit))).scalars())

    async def mark_read(self, notification_id: uuid.UUID, recipient_id: uuid.UUID) -> bool:
        # Only the recipient's own row; a read one keeps its first read time.
        owned = await self.session.execute(
            select(Notification.id).where(
                Notification.id == notification_id, Notification.recipient_id == recipient_id
            )
        )
        if owned.scalar_one_or_none() is None:
            return False
        await self.session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.read_at.is_(None))
            .values(read_at=utcnow())
        )
        return True

    async def get(self, notification_id: uuid.UUID) -> Notification | None:
        return await self.session.get(Notification, notification_id, populate_existing=True)
