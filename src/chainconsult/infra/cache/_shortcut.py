"""Answers a repeat public cached GET straight from L1, before FastAPI's routing, dependency
resolution and query validation, which cost several times what the edge stack and the cache
lookup do together on such a read (docs/decisions/0006-cached-read-shortcut.md).

The shortcut never works out a cache key on its own, so it cannot disagree with the route
about one: it remembers, per exact (path, query string), the key that the route itself
used the last time it answered that request through ``cached_json(..., repeatable=True)``.
The key is a function of the validated path and query only (that is what ``repeatable``
declares), so the same bytes always map to the same key. The next identical GET is answered
from L1 with ``Cache.peek`` when it holds a live value (the same check, TTL and
invalidation generations, as an L1 hit through the route), through the same response helper
as the route; otherwise, or with any credentials, it goes the normal way.

Installed innermost: every edge policy (metrics, client IP and blocklist, request id and
logging, security headers, CORS, API versions, rate limit, body guard) wraps it exactly as it
wraps the route. The metrics label is the route template learned with the key."""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache
from starlette.types import ASGIApp, Receive, Scope, Send

from chainconsult.infra.cache._http import (
    CachedRead,
    cached_body_response,
    etag_of,
)
from chainconsult.infra.monitoring.http_metrics import (
    UNMATCHED_ROUTE,
    RouteLabel,
    route_template,
)
from chainconsult.infra.request_state import request_state
from chainconsult.infra.resources import resources_of

# Requests with any of these may be about a caller: they always take the normal path.
_CREDENTIAL_HEADERS = frozenset({b"authorization", b"cookie"})
_MAX_LEARNED_URL = 2048
"""Longer path + query strings are not remembered (unknown query parameters are ignored by the
routes, so a client could otherwise fill the table with arbitrarily large keys)."""


@dataclass(frozen=True, slots=True)
class _Learned:
    read: CachedRead
    route: RouteLabel


class CachedReadShortcut:
    def __init__(self, app: ASGIApp, *, max_requests: int = 4096) -> None:
        self.app = app
        # Bounded: query strings come from clients, and each distinct one is an entry.
        self._learned: LRUCache[tuple[str, bytes], _Learned] = LRUCache(max_requests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if_none_match: str | None = None
        for name, value in scope["headers"]:
            if name in _CREDENTIAL_HEADERS:
                await self.app(scope, receive, send)
                return
            if name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
        request = (scope["path"], scope.get("query_string", b""))
        learned = self._learned.get(request)
        if learned is not None:
            cache = resources_of(scope["app"]).cache
            entry = cache.peek(name=learned.read.name, key=learned.read.key)
            if entry is not None:
                scope["route"] = learned.route
                if entry.etag is None:
                    # Hashed once per L1 entry, not per hit (7.6 kB of directory page took
                    # ~4 % of a hit's CPU to hash).
                    entry.etag = etag_of(entry.payload)
                response = cached_body_response(
                    entry.payload,
                    etag=entry.etag,
                    if_none_match=if_none_match,
                    cache_control=learned.read.cache_control,
                    media_type=learned.read.media_type,
                    vary=learned.read.vary,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
        read = request_state(scope).cached_read
        if read is not None and len(request[0]) + len(request[1]) <= _MAX_LEARNED_URL:
            template = route_template(scope)
            if template != UNMATCHED_ROUTE:
                self._learned[request] = _Learned(read, RouteLabel(template))
