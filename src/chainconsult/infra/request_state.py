"""What travels with one request between the middleware and the handlers, typed: its id, the
client's address, the caller once resolved, and what a cached read answered from. One object
per request, under one scope key; ``request_state(scope)`` is the one way to it.

Every layer sees the same object, also through the scope copies some middleware make (HEAD as
GET, the v1 rewrite): it is created by the outermost layer that asks (the request context)
and only ever mutated, never replaced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.types import Scope

if TYPE_CHECKING:
    from chainconsult.infra.cache._http import CachedRead

_SCOPE_KEY = "chainconsult.request"


@dataclass(slots=True)
class RequestState:
    request_id: str | None = None
    """X-Request-ID, the caller's when well formed (RequestContextMiddleware)."""
    client_ip: str | None = None
    """The real client address, X-Forwarded-For read through TRUSTED_PROXIES (ClientIP)."""
    client_trusted: bool = False
    """The client is in TRUSTED_IPS: not rate limited, may reach the operator routes."""
    principal: object | None = None
    """The caller (accounts' ``Principal``) once the rate limit or an auth dependency has
    resolved it; infra does not know its type, accounts narrows it."""
    status: int | None = None
    """The response's status once it started, recorded by RequestContextMiddleware, through
    which every answer passes: the layers outside it (metrics, tracing) read it there rather
    than each wrapping ``send``."""
    cached_read: CachedRead | None = None
    """What ``cached_json(..., repeatable=True)`` answered from, for the cached-read
    shortcut to answer the next identical request without routing."""

    @property
    def counted_status(self) -> int:
        """The status the request is logged, measured and traced with: its response's, or
        500 when none started (a crash before any answer)."""
        return self.status or 500


def request_state(scope: Scope) -> RequestState:
    """The request's state (handlers pass ``request.scope``); created on first use."""
    state: RequestState | None = scope.get(_SCOPE_KEY)
    if state is None:
        state = scope[_SCOPE_KEY] = RequestState()
    return state


def client_ip(request: HTTPConnection) -> str | None:
    """The client's address: the edge's (X-Forwarded-For through TRUSTED_PROXIES), else the
    peer's when no edge middleware ran."""
    ip = request_state(request.scope).client_ip
    if ip is not None:
        return ip
    return request.client.host if request.client else None
