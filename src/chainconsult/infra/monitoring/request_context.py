"""Per-request context: the X-Request-ID on every response and in every log line, one access
log line per request, and the barrier that turns an unexpected crash into a 500 problem."""

from __future__ import annotations

import logging
import random
import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.http import send_problem

log = structlog.get_logger("chainconsult.access")
_access = logging.getLogger("chainconsult.access")

# Accept the caller's id only when it cannot smuggle anything into logs or headers.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,128}")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _WELL_FORMED.fullmatch(candidate):
                    request_id = candidate
                break
        # 128 random bits in uuid4().hex's form, from the `random` module rather than the
        # kernel: an id correlates log lines and is no secret, and uuid4's system call cost
        # eight times as much on every request (`random` is reseeded in each forked worker).
        request_id = request_id or f"{random.getrandbits(128):032x}"
        # A per-request copy of the lifespan state, as the ASGI spec asks of servers (not every
        # harness copies it; a shared dict would leak one request's state into the next).
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Asked first: below LOG_LEVEL, structlog would build the event and then drop it.
            if _access.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")


class CrashBarrierMiddleware:
    """Innermost middleware: an exception no handler knows becomes a 500 problem carrying only
    the request id, so it passes back through every outer middleware (request id, security
    headers) like any other response. Starlette's own 500 page is outside all of them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            structlog.get_logger("chainconsult.errors").exception(
                "unhandled_error", method=scope.get("method"), path=scope.get("path")
            )
            if started:
                raise
            await send_problem(
                scope,
                send,
                status=500,
                title="Internal server error",
                detail="Something went wrong on our side; quote the request id when reporting it.",
                slug="internal-error",
            )
