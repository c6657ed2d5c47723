from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.errors import BadRequest
from chainconsult.infra.monitoring.models import Alert, LogEntry


def encode_cursor(alert: Alert) -> str:
    raw = f"{alert.first_seen_at.isoformat()}|{alert.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        return dt.datetime.fromisoformat(when), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The cursor is not one this API returned.", parameter="cursor") from exc


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
