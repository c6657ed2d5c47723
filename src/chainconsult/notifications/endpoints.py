from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from chainconsult.accounts.auth import CurrentAccount
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from chainconsult.notifications.schemas import NotificationResponse
from chainconsult.notifications.service import NotificationService

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=Page[NotificationResponse])
async def list_notifications(
    principal: CurrentAccount,
    session: DbSession,
    unread: Annotated[bool, Query(description="Only notifications not yet read.")] = False,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[NotificationResponse]:
    """Your notifications, newest first."""
    return await NotificationService(session).list_for(
        principal.account_id, unread_only=unread, cursor=cursor, limit=limit
    )


@router.post("/{notification_id}/read", response_model=NotificationResponse)
async def mark_read(
    notification_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> NotificationResponse:
    """Mark one of your notifications read (idempotent: the first read time is kept)."""
    return await NotificationService(session).mark_read(
        notification_id=notification_id, recipient_id=principal.account_id
    )
