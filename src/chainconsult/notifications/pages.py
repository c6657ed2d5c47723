"""Your notifications, newest first, each marked read from the page: the same service as
`/api/v2/notifications`. The header shows the unread count (accounts/visit.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import MemberPosted, MemberVisit
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE
from chainconsult.notifications.service import NotificationService
from chainconsult.web.routing import page_router

router = page_router()


@router.get("/notifications")
async def notifications_page(
    visit: MemberVisit,
    unread: Annotated[bool, Query()] = False,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    page = await NotificationService(visit.session).list_for(
        visit.member.account_id, unread_only=unread, cursor=cursor, limit=DEFAULT_PAGE_SIZE
    )
    return await visit.render("notifications/list.html", page=page, unread_only=unread)


@router.post("/notifications/{notification_id:uuid}/read")
async def mark_read(notification_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    await NotificationService(visit.session).mark_read(
        notification_id=notification_id, recipient_id=visit.member.account_id
    )
    return RedirectResponse("/notifications", status_code=303)
