"""Small HTTP pieces shared by handlers and raw ASGI middleware: the problem+json body and
response, and sending one straight from middleware."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.request_state import request_state

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://chainconsult.dev/problems/"
"""Problem types are documented under this URI, one page per slug."""


def request_id_of(scope: Scope) -> str | None:
    return request_state(scope).request_id


def problem_body(
    scope: Scope, *, status: int, title: str, detail: str, type_: str, **extensions: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
        "request_id": request_id_of(scope),
    }
    body.update(extensions)
    return body


class ProblemResponse(Response):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class JSONResponse(StarletteJSONResponse):
    """orjson-rendered JSON; the default response class of the API. A subclass of Starlette's
    JSONResponse so that FastAPI documents each route's response model in OpenAPI."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


async def send_problem(
    scope: Scope,
    send: Send,
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> None:
    """Answer from inside an ASGI middleware, before the application ran."""
    body = orjson.dumps(
        problem_body(
            scope,
            status=status,
            title=title,
            detail=detail,
            type_=PROBLEM_BASE + slug,
            **extensions,
        )
    )
    raw_headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class HeadAsGetMiddleware:
    """HEAD answered as GET without the body (RFC 9110 9.3.2: same status and headers,
    ``Content-Length`` included). FastAPI routes list only the methods they declare, so
    without this a ``curl -I`` or an uptime monitor's HEAD gets 405 from every GET route.

    It sits outside the versioning layer, so a v1 answer is converted from the GET's body
    before the body is dropped (the headers then match the GET's). The inner layers get a
    copy of the scope: the server's own scope must keep saying HEAD, or uvicorn expects the
    body that ``Content-Length`` announces and fails the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        inner = {**scope, "method": "GET"}
        try:
            await self.app(inner, receive, without_body)
        finally:
            # What routing left in the copy, for the route label of the metrics outside.
            for key in ("fastapi", "route"):
                if key in inner:
                    scope[key] = inner[key]
