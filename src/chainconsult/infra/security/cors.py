"""CORS for browsers on other origins: Starlette's middleware, with ALLOWED_ORIGINS matched
exactly, credentials allowed, and two changes: an unlisted origin gets no CORS header at all
(Starlette still sends it ``Access-Control-Allow-Credentials``), and a refused preflight is a
problem+json like every other error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.http import PROBLEM_BASE, ProblemResponse, problem_body

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "X-CSRF-Token",
    "X-Request-ID",
    "API-Version",
    "Idempotency-Key",
)
# Response headers a page's script may read: without these it could not see its quota,
# when to retry, or which request id to quote.
EXPOSED_HEADERS = (
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "X-Request-ID",
    "API-Version",
    "Deprecation",
    "Sunset",
    "Link",
    "Location",
    "ETag",
)


class ExactOriginCORSMiddleware(CORSMiddleware):
    def __init__(self, app: ASGIApp, *, allowed_origins: Sequence[str], max_age: int) -> None:
        super().__init__(
            app,
            allow_origins=list(allowed_origins),
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=True,
            expose_headers=EXPOSED_HEADERS,
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(name == b"origin" for name, _ in scope["headers"]):
            headers = Headers(scope=scope)
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    response = _refused(scope, response)
                await response(scope, receive, send)
                return
            await self.simple_response(scope, receive, send, request_headers=headers)
            return

        # No Origin (most API traffic: servers, scripts, same-origin pages): Starlette only
        # adds "Origin" to Vary (caches must not serve this answer to a cross-origin page),
        # after building request and response header objects to find that out. The same,
        # directly, on every request's path.
        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = vary_origin(message.get("headers", []))
            await send(message)

        await self.app(scope, receive, send_with_vary)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if (
            message["type"] == "http.response.start"
            and origin is not None
            and not self.is_allowed_origin(origin)
        ):
            MutableHeaders(scope=message).add_vary_header("Origin")
            await send(message)
            return
        await super().send(message, send, request_headers)


def _refused(scope: Scope, response: Response) -> Response:
    """Starlette's refused preflight (text/plain) as a problem like every other error."""
    refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
    body = problem_body(
        scope,
        status=400,
        title="Cross-origin request refused",
        detail=f"This cross-origin request is not allowed: {refused}.",
        type_=PROBLEM_BASE + "cors-refused",
    )
    dropped = {"content-length", "content-type"}
    if "access-control-allow-origin" not in response.headers:
        dropped.add("access-control-allow-credentials")
    headers = {
        name: value for name, value in response.headers.items() if name.lower() not in dropped
    }
    return ProblemResponse(body, status_code=400, headers=headers)


def vary_origin(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with "Origin" added to Vary, exactly as Starlette's
    ``MutableHeaders["Vary"] = ", ".join([*getlist("Vary"), "Origin"])`` does it: the Vary
    values joined into the first Vary header's place, the others removed."""
    result = list(headers)
    found = [index for index, (name, _) in enumerate(result) if name == b"vary"]
    if not found:
        result.append((b"vary", b"Origin"))
        return result
    value = b", ".join([*(result[index][1] for index in found), b"Origin"])
    for index in reversed(found[1:]):
        del result[index]
    result[found[0]] = (b"vary", value)
    return result
