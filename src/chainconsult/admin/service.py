"""Operator reads: the audit log listing."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.admin.repository import AuditRepository
from chainconsult.admin.schemas import AuditEntryResponse, AuditFilters
from chainconsult.infra.pagination import Page, decode_cursor, encode_cursor

_CURSOR_KIND = "audit"


class AuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = AuditRepository(session)

    async def search(
        self, filters: AuditFilters, cursor: str | None, limit: int
    ) -> Page[AuditEntryResponse]:
        after = None
        if cursor is not None:
            occurred, entry_id = decode_cursor(
                cursor, _CURSOR_KIND, dt.datetime.fromisoformat, uuid.UUID
            )
            after = (occurred, entry_id)
        rows = await self.repository.page(filters, after=after, limit=limit + 1)
        items = [AuditEntryResponse.model_validate(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(_CURSOR_KIND, last.occurred_at.isoformat(), last.id)
        return Page[AuditEntryResponse](data=items, next_cursor=next_cursor)
