"""`GET /api/v2/events`: the caller's live events as Server-Sent Events (infra/live)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.responses import Response, StreamingResponse

from chainconsult.accounts.auth import CurrentAccount, login_deadline
from chainconsult.accounts.identity import credential_of
from chainconsult.config import settings_of
from chainconsult.errors import TooManyRequests, Unauthorized
from chainconsult.infra.resources import resources_of

router = APIRouter(tags=["events"])
_EVENT_ID = re.compile(r"[0-9]{1,20}")

EVENT_STREAM = "text/event-stream"


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless event stream: `event: notification`, `message` or "
            "`read`, each with an `id:` and JSON `data:`; a comment line when idle.",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        },
        401: {"description": "Not logged in."},
        429: {"description": "You hold SSE_MAX_CONNECTIONS_PER_USER streams already."},
    },
)
async def events(
    request: Request,
    principal: CurrentAccount,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=20,
            description="Resume after this event: the ones since (from the last few minutes) "
            "are sent first.",
        ),
    ] = None,
) -> Response:
    """Your new notifications, messages and read markers as they happen. Browsers
    reconnect by themselves and send `Last-Event-ID`."""
    hub = resources_of(request).live
    # ASCII digits only: str.isdigit() also takes superscripts, which int() refuses.
    resume = int(last_event_id) if last_event_id and _EVENT_ID.fullmatch(last_event_id) else None
    credential = credential_of(request.scope)
    if credential is None:  # the caller was resolved from it, so only a defect leads here
        raise Unauthorized()
    # The stream ends with its login: at its expiry, or on its revocation.
    stream = await hub.open(
        principal.account_id,
        resume,
        credential=credential,
        expires_at=login_deadline(principal),
    )
    if stream is None:
        limit = settings_of(request).conversations.sse_max_connections_per_user
        raise TooManyRequests(
            f"You have {limit} event streams open already; close one first.",
            headers={"Retry-After": "5"},
            limit=limit,
        )
    return hub.response(stream, {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
