"""Who may see the operator surfaces. Decided without the database where possible, because
these pages matter most when it is down: TRUSTED_IPS need no lookup, and a login that cannot be
checked while the database is unreachable is a clear 503, never a 500."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.auth import SESSION_COOKIE
from chainconsult.accounts.mfa import ensure_admin
from chainconsult.accounts.service import AccountService, Principal
from chainconsult.config import settings_of
from chainconsult.errors import Forbidden, ServiceUnavailable, Unauthorized
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.request_state import client_ip, request_state
from chainconsult.models.accounts import Role

_bearer = HTTPBearer(auto_error=False, description="The access_token returned by login.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Set by login.")


def from_trusted_ip(request: Request) -> bool:
    ip = client_ip(request)
    if ip is None:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in settings_of(request).security.trusted_ips)


def _token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def resolve_caller(request: Request, session: AsyncSession) -> Principal | None:
    """The logged-in caller, if any. Only for safe methods: operator actions that change
    something use the accounts module's dependencies, with their CSRF check."""
    token = _token(request)
    if token is None:
        return None
    try:
        settings = settings_of(request)
        principal = await AccountService(session).principal_for_token(
            token,
            verification_required=settings.lifecycle.require_verified_email,
            admin_requires_2fa=settings.admin_requires_2fa,
        )
    except (DBAPIError, OSError) as exc:
        raise ServiceUnavailable(
            "Logins cannot be checked while the database is unreachable; GET /api/health "
            "still answers, and TRUSTED_IPS can read detailed health and /metrics.",
            headers={"Retry-After": "5"},
        ) from exc
    if principal is None:
        raise Unauthorized("The token or session is invalid, expired or revoked.")
    request_state(request.scope).principal = principal
    return principal


async def _trusted_or_admin(
    request: Request,
    session: DbSession,
    # Declared so that OpenAPI shows how to authenticate; resolve_caller reads the same.
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _session_cookie: Annotated[str | None, Depends(_cookie)],
) -> None:
    # The trusted-IP check comes first so that it needs no database at all.
    if from_trusted_ip(request):
        return
    principal = await resolve_caller(request, session)
    if principal is None:
        raise Unauthorized("Log in as an admin, or call from one of TRUSTED_IPS.")
    if principal.role is not Role.admin:
        raise Forbidden("This needs an admin account or a TRUSTED_IPS address.")
    ensure_admin(principal)


OperatorAccess = Depends(_trusted_or_admin)
