from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.monitoring.models import Alert, LogEntry


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self,
        *,
        status: str | None,
        severity: str | None,
        limit: int,
        cursor: tuple[dt.datetime, uuid.UUID] | None,
    ) -> Sequence[Alert]:
        query = select(Alert)
        if status is not None:
            query = query.where(Alert.status == status)
        if severity is not None:
            query = query.where(Alert.severity == severity)
        if cursor is not None:
            query = query.where(tuple_(Alert.first_seen_at, Alert.id) < tuple_(*cursor))
        query = query.order_by(Alert.first_seen_at.desc(), Alert.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

    async def get_for_update(self, alert_id: uuid.UUID) -> Alert | None:
        return await self.session.get(Alert, alert_id, with_for_update=True)

    async def recent_problems(self, limit: int) -> Sequence[LogEntry]:
        query = (
            select(LogEntry)
            .where(
                or_(
                    LogEntry.level == "warning",
                    LogEntry.level == "error",
                    LogEntry.level == "critical",
                )
            )
            .order_by(LogEntry.created_at.desc())
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()
