"""Who is calling, for the edge middleware: the bearer token or session cookie resolved to
the account and its plan before any route runs, so the rate limit can apply the plan's tier.

The principal found here is kept in the request state (``RequestState.principal``), where the route
dependency in accounts/auth.py picks it up instead of looking it up again."""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.types import Scope

from chainconsult.accounts.auth import SESSION_COOKIE, principal_for_credential
from chainconsult.infra.ratelimit import Identity
from chainconsult.infra.request_state import request_state


def credential_of(scope: Scope) -> str | None:
    """The login token of a request, by the rules of accounts/auth.py: a Bearer
    Authorization header first, else the session cookie."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    cookie_header = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"cookie":
            cookie_header = value.decode("latin-1")
    if cookie_header:
        return cookie_parser(cookie_header).get(SESSION_COOKIE) or None
    return None


async def identify(scope: Scope) -> Identity | None:
    """The rate limiter's view of the caller: ``account:<id>`` and the plan, or None for an
    anonymous request or a token that does not resolve (counted by IP; the route answers 401)."""
    token = credential_of(scope)
    if token is None:
        return None
    principal = await principal_for_credential(scope["app"], token)
    if principal is None:
        return None
    request_state(scope).principal = principal
    return Identity(key=f"account:{principal.account_id}", tier=principal.plan.value)
