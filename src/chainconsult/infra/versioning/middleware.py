"""The versioning layer: one pure ASGI middleware in front of the (v2) application.

Why not cadwyn: it picks the version from one location only (``api_version_location`` is a
header *or* the path), while our contract serves ``/api/v1/...`` by URL and ``/api/...`` by
``API-Version``/``Accept`` at the same time; its version picker is a ``BaseHTTPMiddleware``
(we keep the hot path pure ASGI), the app would have to become a ``Cadwyn`` subclass, and it
has no Deprecation/Sunset/Link headers. What we need on top of the v2 handlers is small: map a
v1 URL to its v2 route, convert the body and query up, the response and errors down, and add
headers; that is this module (routing, headers) with ``v1_conversion.py`` (bodies), driven
by the declarations in ``surface.py``.

- v2 (URL or header): the request passes through; only ``API-Version`` (and ``Vary`` for the
  unversioned path) is added to the response, so the current API pays almost nothing.
- v1: the route is looked up in the declared v1 surface (404/405 problems for paths v1 never
  had), rewritten onto its v2 route, and its response is buffered only when a declared change
  applies to it (a successful JSON body with a response shape, or any problem+json).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainconsult.infra.http import send_problem
from chainconsult.infra.monitoring.metrics import api_v1_requests_total
from chainconsult.infra.security.body import BodyReadTimeout
from chainconsult.infra.versioning.changes import UpConversionError
from chainconsult.infra.versioning.lifecycle import V1Lifecycle
from chainconsult.infra.versioning.negotiation import (
    CURRENT,
    VersionError,
    negotiate,
    supported_text,
)
from chainconsult.infra.versioning.surface import (
    V1_PREFIX,
    V2_PREFIX,
    V1Surface,
)
from chainconsult.infra.versioning.v1_conversion import (
    RawHeaders,
    V1Responder,
    convert_request,
    header,
)

API_V1 = (b"api-version", b"1")
API_V2 = (b"api-version", b"2")
VARY = (b"vary", b"API-Version, Accept")
UNVERSIONED_PATHS = frozenset({"/api/health"})
"""Paths under /api that belong to no version (the brief health report); never rewritten."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Where FastAPI and Starlette record the route that answered (see http_metrics.route_template).
_ROUTING_KEYS = ("fastapi", "route")
_CLIENT_TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,32}")


def _with_headers(send: Send, extra: RawHeaders) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return send_with_headers


def _is_json(content_type: bytes | None) -> bool:
    media = (content_type or b"").split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the (converted) body over once, then the server's messages."""
    done = False

    async def replay() -> Message:
        nonlocal done
        if done:
            return await receive()
        done = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class ApiVersionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        surface: V1Surface,
        lifecycle: V1Lifecycle,
        max_body_bytes: int,
        max_client_labels: int = 50,
    ) -> None:
        self.app = app
        self.surface = surface
        self.lifecycle = lifecycle
        self.max_body_bytes = max_body_bytes
        # Bounded label set: a metric label per distinct User-Agent would grow without limit.
        self.max_client_labels = max_client_labels
        self._clients: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/api" or path.startswith("/api/")):
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/v2/"):
            # The current version by URL, the common case: nothing to negotiate or rewrite.
            await self.app(scope, receive, _with_headers(send, [API_V2]))
            return
        if path in UNVERSIONED_PATHS:
            await self.app(scope, receive, _with_headers(send, [API_V2]))
            return
        try:
            negotiated = negotiate(path, scope["headers"])
        except VersionError as exc:
            await send_problem(
                scope,
                _with_headers(send, [API_V2, VARY]),
                status=400,
                title="Unsupported API version",
                detail=str(exc),
                slug="unsupported-api-version",
                supported_versions=supported_text().split(", "),
            )
            return
        if negotiated.version == CURRENT:
            if negotiated.by_url:
                await self.app(scope, receive, _with_headers(send, [API_V2]))
                return
            inner = _rewritten(scope, V2_PREFIX + negotiated.rest, len(path) - len(negotiated.rest))
            await self._inner(scope, inner, receive, _with_headers(send, [API_V2, VARY]))
            return
        await self._serve_v1(scope, receive, send, negotiated.rest, negotiated.by_url)

    async def _serve_v1(
        self, scope: Scope, receive: Receive, send: Send, rest: str, by_url: bool
    ) -> None:
        method: str = scope["method"]
        prefix_length = len(scope["path"]) - len(rest)
        vary = [] if by_url else [VARY]
        if rest in self.surface.passthrough:
            self._count(scope, method, V1_PREFIX + rest)
            headers = [API_V1, *self.lifecycle.headers(self.surface.passthrough[rest]), *vary]
            inner = scope if by_url else _rewritten(scope, V1_PREFIX + rest, prefix_length)
            await self._inner(scope, inner, receive, _with_headers(send, headers))
            return
        found = self.surface.match(method, rest)
        if found is None or isinstance(found, list):
            self._count(scope, method, "unmatched")
            headers = [API_V1, *self.lifecycle.headers(V2_PREFIX + rest), *vary]
            if found:
                await self._problem(
                    scope,
                    send,
                    [*headers, (b"allow", ", ".join(found).encode())],
                    status=405,
                    title="Method not allowed",
                    detail=f"API v1 allows {', '.join(found)} here.",
                    slug="method-not-allowed",
                )
                return
            await self._problem(
                scope,
                send,
                headers,
                status=404,
                title="Not found",
                detail=f"API v1 has no resource at {scope['path']}; see the v2 API.",
                slug="not-found",
            )
            return
        route = found.route
        successor = route.v2_path_for(found.params)
        headers = [API_V1, *self.lifecycle.headers(successor), *vary]
        self._count(scope, method, route.template)
        if method == "OPTIONS":
            # A CORS preflight is about the resource, not its shape: let v2 answer it.
            await self._inner(scope, _rewritten(scope, successor, prefix_length), receive, send)
            return
        query_string: bytes = scope.get("query_string", b"")
        raw_headers: RawHeaders = list(scope["headers"])
        try:
            if route.query:
                params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
                for change in route.query:
                    params = change.query_up(params)
                query_string = urlencode(params).encode("latin-1")
            if (
                route.request is not None
                and method in _BODY_METHODS
                and _is_json(header(raw_headers, b"content-type"))
            ):
                body = await self._read_body(raw_headers, receive)
                if body is None:
                    await self._problem(
                        scope,
                        send,
                        headers,
                        status=413,
                        title="Request body too large",
                        detail=f"The request body is larger than {self.max_body_bytes} bytes.",
                        slug="payload-too-large",
                    )
                    return
                body = convert_request(route, body)
                raw_headers = [(k, v) for k, v in raw_headers if k != b"content-length"]
                raw_headers.append((b"content-length", str(len(body)).encode()))
                receive = _replay(body, receive)
        except UpConversionError as exc:
            await self._invalid_v1_input(scope, send, headers, exc)
            return
        except BodyReadTimeout as exc:
            await exc.answer(scope, _with_headers(send, headers))
            return
        if route.own_route:
            inner = _rewritten(scope, V1_PREFIX + rest, prefix_length)
        else:
            inner = _rewritten(scope, successor, prefix_length, keep_raw=route.v2_path is None)
        inner["query_string"] = query_string
        inner["headers"] = raw_headers
        await self._inner(scope, inner, receive, V1Responder(send, route, headers, scope["path"]))

    async def _inner(self, outer: Scope, inner: Scope, receive: Receive, send: Send) -> None:
        """Run the app on a rewritten copy of the scope, then hand what routing left in it
        back to the caller's scope, so the metrics outside count the request under the v2
        route template that served it (not as unmatched)."""
        try:
            await self.app(inner, receive, send)
        finally:
            if inner is not outer:
                for key in _ROUTING_KEYS:
                    if key in inner:
                        outer[key] = inner[key]

    async def _read_body(self, headers: RawHeaders, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than allowed."""
        declared = header(headers, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _invalid_v1_input(
        self, scope: Scope, send: Send, headers: RawHeaders, exc: UpConversionError
    ) -> None:
        item: dict[str, Any] = {"detail": exc.message, "type": "value_error"}
        if exc.where == "body":
            item["pointer"] = f"#/{exc.name}"
        else:
            item.update(parameter=exc.name, **{"in": "query"})
        await self._problem(
            scope,
            send,
            headers,
            status=422,
            title="Invalid input",
            detail="1 field(s) failed validation.",
            slug="validation-error",
            errors=[item],
        )

    async def _problem(
        self,
        scope: Scope,
        send: Send,
        headers: RawHeaders,
        *,
        status: int,
        title: str,
        detail: str,
        slug: str,
        **extensions: Any,
    ) -> None:
        await send_problem(
            scope,
            _with_headers(send, headers),
            status=status,
            title=title,
            detail=detail,
            slug=slug,
            **extensions,
        )

    def _count(self, scope: Scope, method: str, route: str) -> None:
        api_v1_requests_total.labels(method, route, self._client_label(scope)).inc()

    def _client_label(self, scope: Scope) -> str:
        agent = header(scope["headers"], b"user-agent")
        token = _CLIENT_TOKEN.match(agent) if agent else None
        if token is None:
            return "unknown"
        label = token.group(0).decode().lower()
        if label in self._clients:
            return label
        if len(self._clients) >= self.max_client_labels:
            return "other"
        self._clients.add(label)
        return label


def _rewritten(scope: Scope, path: str, prefix_length: int, *, keep_raw: bool = True) -> Scope:
    """A copy of ``scope`` for ``path``. The raw (still percent-encoded) path keeps the
    client's bytes after the version prefix when the rest of the path is unchanged."""
    raw: bytes | None = scope.get("raw_path")
    old_prefix = scope["path"][:prefix_length].encode()
    if (
        keep_raw
        and raw is not None
        and raw.startswith(old_prefix)
        and path.endswith(scope["path"][prefix_length:])
    ):
        new_prefix = path[: len(path) - (len(scope["path"]) - prefix_length)]
        new_raw = new_prefix.encode() + raw[prefix_length:]
    else:
        new_raw = quote(path).encode()
    return {**scope, "path": path, "raw_path": new_raw}
