"""Request body guards: a time limit for the whole body (408), and for the JSON API a size
cap (413), a JSON content type (415) and a cap on JSON nesting depth (400).

They run before any handler reads the body, so a slow, oversized or mistyped request never
reaches validation, the database or the logs."""

from __future__ import annotations

import asyncio
import re

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


class BodyReadTimeout(HTTPException):
    """The body did not arrive within the time limit. An HTTPException, so that FastAPI's
    body parsing lets it through as it is and the problem handlers render it; a layer that
    reads the body itself (the v1 conversion) answers it with ``answer``."""

    title = "Request timeout"
    slug = "request-timeout"

    def __init__(self, seconds: float) -> None:
        # The rest of the body may still be on its way: the connection cannot be reused.
        super().__init__(
            408,
            f"The request body did not arrive within {seconds:g} s.",
            headers={"Connection": "close"},
        )

    async def answer(self, scope: Scope, send: Send) -> None:
        await send_problem(
            scope,
            send,
            status=self.status_code,
            title=self.title,
            detail=self.detail,
            slug=self.slug,
            headers=self.headers,
        )


class BodyDeadlineMiddleware:
    """The whole request body must arrive within ``timeout_seconds`` of its first read, or the
    read raises ``BodyReadTimeout`` (408). The server times out headers but not bodies: without
    this a client sending a byte every few seconds holds a connection and a request forever.
    Outside every layer that reads a body, so they all read through it."""

    def __init__(self, app: ASGIApp, *, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False
        started = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                # After the body, receive only waits for the client to disconnect: no limit.
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.timeout_seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeout(self.timeout_seconds) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyReadTimeout as exc:
            if started:
                raise
            await exc.answer(scope, send)


class BodyGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        json_prefix: str = "/api/",
        max_json_depth: int | None = None,
        uploads: re.Pattern[str] | None = None,
        max_upload_body_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_prefix = json_prefix
        self.max_json_depth = max_json_depth
        self.uploads = uploads
        """API paths taking a file upload instead of JSON: their handler checks the type,
        and their body may reach ``max_upload_body_bytes``."""
        self.max_upload_body_bytes = max_upload_body_bytes

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
        upload = self.uploads is not None and self.uploads.fullmatch(scope["path"]) is not None
        limit = self.max_upload_body_bytes if upload else self.max_body_bytes
        if length is not None and length > limit:
            await self._too_large(scope, send, limit)
            return
        has_body = chunked or bool(length)
        if (
            has_body
            and not upload
            and scope["path"].startswith(self.json_prefix)
            and not _is_json(content_type)
        ):
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
                if received > limit:
                    # A lying or absent Content-Length: stop reading. FastAPI re-raises an
                    # HTTPException from body parsing as it is (any other error becomes a 400),
                    # and the problem handler renders it like the early 413.
                    raise HTTPException(413, f"The request body is larger than {limit} bytes.")
                if depth is not None and not depth.feed(chunk):
                    raise HTTPException(
                        400, f"The JSON body nests deeper than {depth.max_depth} levels."
                    )
            return message

        await self.app(scope, counting_receive, send)

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        await send_problem(
            scope,
            send,
            status=413,
            title="Request body too large",
            detail=f"The request body is larger than {limit} bytes.",
            slug="payload-too-large",
        )
