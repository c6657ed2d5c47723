"""Operator reads: the audit log listing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.admin.repository import AuditRepository
from chainconsult.admin.schemas import AuditEntryResponse, AuditFilters
from chainconsult.infra.pagination import Page, by_creation

_NEWEST_FIRST = by_creation("audit", lambda row: (row.occurred_at.isoformat(), row.id))


class AuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = AuditRepository(session)

    async def search(
        self, filters: AuditFilters, cursor: str | None, limit: int
    ) -> Page[AuditEntryResponse]:
        rows = await self.repository.page(
            filters, after=_NEWEST_FIRST.after(cursor), limit=limit + 1
        )
        return _NEWEST_FIRST.page(
            Page[AuditEntryResponse], rows, limit, AuditEntryResponse.model_validate
        )
