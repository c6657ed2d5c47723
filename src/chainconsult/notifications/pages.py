"""Your notifications, newest first, each marked read from the page: the same service as
`/api/v2/notifications`. The header shows the unread count (accounts/visit.py). And the
page behind every email's unsubscribe link (chainconsult.mail.preferences), which needs no
login: the link's signed token says whose email of which kind."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit, Visit
from chainconsult.errors import NotFound
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE
from chainconsult.infra.resources import resources_of
from chainconsult.mail.preferences import (
    UNSUBSCRIBE_PATH,
    EmailPreferences,
    Unsubscribe,
    read_unsubscribe_token,
)
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


UnsubscribeToken = Annotated[str, Query(alias="token", min_length=1, max_length=200)]


def _unsubscribe(visit: PageVisit, token: str) -> Unsubscribe:
    found = read_unsubscribe_token(resources_of(visit.request).secret_key, token)
    if found is None:
        raise NotFound("This unsubscribe link is not valid; use the link of a recent email.")
    return found


@router.get(UNSUBSCRIBE_PATH)
async def unsubscribe_page(visit: Visit, token: UnsubscribeToken) -> Response:
    """A question, not the deed: mail scanners follow links, and must not unsubscribe anyone."""
    unsubscribe = _unsubscribe(visit, token)
    done = await EmailPreferences(visit.session).opted_out(unsubscribe.account_id, unsubscribe.kind)
    return await visit.render(
        "notifications/unsubscribe.html", unsubscribe=unsubscribe, token=token, done=done
    )


@router.post(UNSUBSCRIBE_PATH)
async def unsubscribe(visit: Visit, token: UnsubscribeToken) -> Response:
    """The page's button and RFC 8058 one-click (a mail client's POST of
    ``List-Unsubscribe=One-Click``) alike: the signed token is the authority, so no login
    and no CSRF token are asked for."""
    unsubscribe = _unsubscribe(visit, token)
    await EmailPreferences(visit.session).opt_out(unsubscribe.account_id, unsubscribe.kind)
    return await visit.render(
        "notifications/unsubscribe.html", unsubscribe=unsubscribe, token=token, done=True
    )
