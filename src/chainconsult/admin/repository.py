from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.admin.schemas import AuditFilters
from chainconsult.models.audit import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self,
        filters: AuditFilters,
        *,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AuditEntry]:
        """Newest first; ``after`` is the (occurred_at, id) of the last entry already served."""
        query = select(AuditEntry)
        if filters.actor_id is not None:
            query = query.where(AuditEntry.actor_id == filters.actor_id)
        if filters.action is not None:
            query = query.where(AuditEntry.action == filters.action)
        if filters.resource_type is not None:
            query = query.where(AuditEntry.resource_type == filters.resource_type)
        if filters.resource_id is not None:
            query = query.where(AuditEntry.resource_id == filters.resource_id)
        if filters.since is not None:
            query = query.where(AuditEntry.occurred_at >= filters.since)
        if filters.until is not None:
            query = query.where(AuditEntry.occurred_at < filters.until)
        if after is not None:
            query = query.where(tuple_(AuditEntry.occurred_at, AuditEntry.id) < after)
        query = query.order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())
