"""Request body guards for the JSON API: a size cap (413), a JSON content type (415) and a
cap on JSON nesting depth (400).

Both run before any handler reads the body, so an oversized or mistyped request never reaches
validation, the database or the logs."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.http import send_problem
from chainconsult.infra.security.json_depth import JsonDepthScanner

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        json_prefix: str = "/api/",
        max_json_depth: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_prefix = json_prefix
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length: int | None = None
        content_type = ""
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"transfer-encoding":
                chunked = True
        if length is not None and length > self.max_body_bytes:
            await self._too_large(scope, send)
            return
        has_body = chunked or bool(length)
        if has_body and scope["path"].startswith(self.json_prefix) and not _is_json(content_type):
            await send_problem(
                scope,
                send,
                status=415,
                title="Unsupported media type",
                detail="Send the request body as application/json.",
                slug="unsupported-media-type",
                headers={"Accept": "application/json"},
            )
            return
        received = 0
        depth = (
            JsonDepthScanner(self.max_json_depth)
            if self.max_json_depth is not None and has_body and _is_json(content_type)
            else None
        )

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_body_bytes:
                    # A lying or absent Content-Length: stop reading. FastAPI re-raises an
                    # HTTPException from body parsing as it is (any other error becomes a 400),
                    # and the problem handler renders it like the early 413.
                    raise HTTPException(
                        413, f"The request body is larger than {self.max_body_bytes} bytes."
                    )
                if depth is not None and not depth.feed(chunk):
                    raise HTTPException(
                        400, f"The JSON body nests deeper than {depth.max_depth} levels."
                    )
            return message

        await self.app(scope, counting_receive, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await send_problem(
            scope,
            send,
            status=413,
            title="Request body too large",
            detail=f"The request body is larger than {self.max_body_bytes} bytes.",
            slug="payload-too-large",
        )
