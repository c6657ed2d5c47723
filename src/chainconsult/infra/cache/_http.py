"""Cached responses for public reads (JSON, and the HTML pages rendered from the same reads):
the rendered body is what the cache holds, so a hit costs neither a query nor rendering, and
its hash is the ETag. A client (or a CDN) that
sends the ETag back in If-None-Match gets an empty 304.

``Cache-Control: public, no-cache`` lets browsers and shared caches keep the body but makes
them revalidate every time: a user who just changed their profile must see the change on the
next load, and a revalidation that ends in 304 is nearly as cheap as a cache hit."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from chainconsult.infra.cache._cache import Cache
from chainconsult.infra.cache._query import CachedQuery
from chainconsult.infra.request_state import request_state

PUBLIC_REVALIDATE = "public, no-cache"


@dataclass(frozen=True, slots=True)
class CachedRead:
    """A public read answered from the cache: its query name, its key for these arguments,
    and the Cache-Control it was sent with."""

    name: str
    key: str
    cache_control: str
    media_type: str = "application/json"
    vary: str | None = None
    """The request headers the answer depends on beyond the URL, for shared caches."""


def etag_of(body: bytes) -> str:
    # Weak: a compressing proxy or middleware changes the bytes, not the meaning.
    return f'W/"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == opaque for candidate in if_none_match.split(",")
    )


def body_query(name: str, shape: Any, *, ttl: float, version: int = 1) -> CachedQuery[bytes]:
    """A query whose cached value is a rendered JSON body of ``shape`` (a pydantic model). The
    key follows ``shape``'s schema, so a new response shape gets new keys."""
    return CachedQuery(name, bytes, ttl=ttl, version=version, schema_of=shape)


def cached_body_response(
    body: bytes,
    *,
    etag: str,
    if_none_match: str | None,
    cache_control: str,
    media_type: str = "application/json",
    vary: str | None = None,
) -> Response:
    """The answer for a cached body: 304 when the client already has it, else the body; both
    with ETag and Cache-Control. Shared by the route and the shortcut, so the two cannot
    answer differently."""
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if vary is not None:
        headers["Vary"] = vary
    if if_none_match and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


async def cached_json(
    request: Request,
    query: CachedQuery[bytes],
    *,
    cache: Cache | None,
    arguments: Mapping[str, Any] | Sequence[Any],
    tags: Iterable[str],
    load: Callable[[], Awaitable[BaseModel]],
    cache_control: str = PUBLIC_REVALIDATE,
    repeatable: bool = False,
) -> Response:
    """The JSON response for ``load()``'s model, from the cache when it can be, with ETag and
    Cache-Control; 304 when the client already has this body.

    ``repeatable=True`` declares that the answer depends on nothing but the request's path and
    query string (no caller, no other header but If-None-Match): the CachedReadShortcut may
    then answer the same GET again straight from L1, without routing or validation."""

    async def render() -> bytes:
        return (await load()).model_dump_json().encode()

    return await cached_body(
        request,
        query,
        cache=cache,
        arguments=arguments,
        tags=tags,
        render=render,
        cache_control=cache_control,
        repeatable=repeatable,
    )


async def cached_body(
    request: Request,
    query: CachedQuery[bytes],
    *,
    cache: Cache | None,
    arguments: Mapping[str, Any] | Sequence[Any],
    tags: Iterable[str],
    render: Callable[[], Awaitable[bytes]],
    cache_control: str = PUBLIC_REVALIDATE,
    media_type: str = "application/json",
    vary: str | None = None,
    repeatable: bool = False,
) -> Response:
    """``cached_json`` for a body rendered by ``render`` (an HTML page), of ``media_type``."""
    body = await query.get(cache, arguments=arguments, tags=tags, load=render)
    if repeatable and cache is not None and cache.enabled:
        read = CachedRead(query.name, query.key(arguments), cache_control, media_type, vary)
        request_state(request.scope).cached_read = read
    return cached_body_response(
        body,
        etag=etag_of(body),
        if_none_match=request.headers.get("if-none-match"),
        cache_control=cache_control,
        media_type=media_type,
        vary=vary,
    )
