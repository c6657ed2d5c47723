"""Per-request context: the X-Request-ID on every response and in every log line, one access
log line per request, and the barrier that turns an unexpected crash into a 500 problem (with
a last resort for a crash outside every barrier)."""

from __future__ import annotations

import logging
import random
import re
import time

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.http import PROBLEM_BASE, ProblemResponse, problem_body, send_problem
from chainconsult.infra.monitoring.logging import access_line
from chainconsult.infra.request_state import request_state
from chainconsult.infra.security.headers import SERVER_HEADER

_access = logging.getLogger("chainconsult.access")

# Accept the caller's id only when it cannot smuggle anything into logs or headers.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_CRASH_TITLE = "Internal server error"
_CRASH_DETAIL = "Something went wrong on our side; quote the request id when reporting it."
_CRASH_SLUG = "internal-error"


def new_request_id() -> str:
    # 128 random bits in uuid4().hex's form, from the `random` module rather than the
    # kernel: an id correlates log lines and is no secret, and uuid4's system call cost
    # eight times as much on every request (`random` is reseeded in each forked worker).
    return f"{random.getrandbits(128):032x}"


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
        request_id = request_id or new_request_id()
        state = request_state(scope)
        state.request_id = request_id
        header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Not through structlog's chain: at INFO that chain cost about 40 % of a cached
            # read's throughput (docs/decisions/0033-access-log-fast-path.md).
            if _access.isEnabledFor(logging.INFO):
                access_line(
                    method=scope["method"],
                    path=scope["path"],
                    status=state.counted_status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    request_id=request_id,
                )
            structlog.contextvars.unbind_contextvars("request_id")


class CrashBarrierMiddleware:
    """An exception no handler knows becomes a 500 problem carrying only the request id, so it
    passes back through every middleware outside the barrier (request id, security headers)
    like any other response. Starlette's own 500 page is outside all of them; see
    ``last_resort_problem`` for what stands in for it."""

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
                title=_CRASH_TITLE,
                detail=_CRASH_DETAIL,
                slug=_CRASH_SLUG,
            )


async def last_resort_problem(request: Request, exc: Exception) -> Response:
    """The handler of Starlette's outermost ServerErrorMiddleware, for a crash in a layer
    outside every crash barrier (the metrics, request context and security headers layers):
    the same 500 problem instead of a text/plain page. Its answer goes straight to the server,
    past those layers, so it carries the request id and the Server header itself."""
    state = request_state(request.scope)
    request_id = state.request_id = state.request_id or new_request_id()
    structlog.get_logger("chainconsult.errors").error(
        "unhandled_error",
        method=request.scope.get("method"),
        path=request.scope.get("path"),
        request_id=request_id,
        exc_info=exc,
    )
    body = problem_body(
        request.scope,
        status=500,
        title=_CRASH_TITLE,
        detail=_CRASH_DETAIL,
        type_=PROBLEM_BASE + _CRASH_SLUG,
    )
    response = ProblemResponse(body, status_code=500)
    response.raw_headers += [(b"x-request-id", request_id.encode()), SERVER_HEADER]
    return response
