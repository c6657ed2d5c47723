from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    DateTime,
    FromClause,
    String,
    Uuid,
    bindparam,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.base import utcnow
from chainconsult.models.notifications import Notification

_COLUMNS = ["id", "recipient_id", "kind", "payload", "created_at"]

INSERTED = (
    insert(Notification)
    .from_select(
        _COLUMNS,
        select(
            func.unnest(bindparam("ids", type_=ARRAY(Uuid()))),
            func.unnest(bindparam("recipients", type_=ARRAY(Uuid()))),
            bindparam("kind", type_=String()),
            bindparam("payload", type_=JSONB()),
            bindparam("created_at", type_=DateTime(timezone=True)),
        ),
    )
    .returning(Notification.id)
    .cte("inserted")
)
"""One notification per recipient, as a CTE returning ``id``, for statements that must do
more in the same round trip (notify(): their email jobs). A constant, so SQLAlchemy compiles
it once (a multi-row ``VALUES`` is compiled again on every call); parameters from
``inserted_parameters``."""


def inserted_from(
    name: str,
    source: FromClause,
    *,
    recipient: ColumnElement[uuid.UUID],
    kind: str,
    payload: Mapping[str, ColumnElement[Any]],
) -> CTE:
    """``INSERTED`` for a statement that computes the recipient and the payload in SQL: one
    notification per row of ``source`` (the statement's own CTEs), as a CTE named ``name``
    returning ``id``; it binds ``notification_created_at``."""
    return (
        insert(Notification)
        .from_select(
            _COLUMNS,
            select(
                func.gen_random_uuid(),
                recipient,
                literal(kind, String()),
                func.jsonb_build_object(
                    *(part for field, value in payload.items() for part in (literal(field), value))
                ),
                bindparam("notification_created_at", type_=DateTime(timezone=True)),
            ).select_from(source),
        )
        .returning(Notification.id)
        .cte(name)
    )


def inserted_parameters(
    recipients: Sequence[uuid.UUID], kind: str, payload: dict[str, Any]
) -> tuple[list[uuid.UUID], dict[str, Any]]:
    """The new notifications' ids and the parameters of ``INSERTED``."""
    ids = [uuid.uuid4() for _ in recipients]
    return ids, {
        "ids": ids,
        "recipients": list(recipients),
        "kind": kind,
        "payload": payload,
        "created_at": utcnow(),
    }


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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

    async def count_unread(self, recipient_id: uuid.UUID) -> int:
        query = select(func.count()).where(
            Notification.recipient_id == recipient_id, Notification.read_at.is_(None)
        )
        return int((await self.session.execute(query)).scalar_one())

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
