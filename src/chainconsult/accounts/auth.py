"""Who is calling. Every route that declares ``CurrentAccount`` (or ``AdminAccount``) needs a
valid login; the bearer token and the session cookie are equivalent, except that a
cookie-authenticated unsafe request must echo the CSRF cookie in ``X-CSRF-Token``."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.applications import Starlette

from chainconsult.accounts.mfa import ensure_admin
from chainconsult.accounts.service import AccountService, Principal
from chainconsult.config import settings_of
from chainconsult.errors import Forbidden, Unauthorized
from chainconsult.infra.db.session import lazily_closed
from chainconsult.infra.monitoring.metrics import auth_failures_total
from chainconsult.infra.request_state import request_state
from chainconsult.infra.resources import resources_of
from chainconsult.infra.security.csrf import CSRF_COOKIE as CSRF_COOKIE
from chainconsult.infra.security.csrf import CSRF_HEADER as CSRF_HEADER
from chainconsult.infra.security.csrf import request_origin_allowed
from chainconsult.infra.security.tokens import csrf_token_valid

SESSION_COOKIE = "session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="The access_token returned by login.")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="Set by login; unsafe requests must also send X-CSRF-Token.",
)


async def principal_for_credential(app: Starlette, token: str) -> Principal | None:
    """The one lookup of a login token. Both of its reads are cached: a session that begins
    no transaction (a query autobegins one, which closing rolls back; it only reads) and is
    closed only if used costs nothing when they hit."""
    settings = settings_of(app)
    async with lazily_closed(resources_of(app).sessionmaker()) as session:
        return await AccountService(session).principal_for_token(
            token,
            verification_required=settings.lifecycle.require_verified_email,
            admin_requires_2fa=settings.admin_requires_2fa,
        )


def login_deadline(principal: Principal) -> float:
    """When the caller's login expires, in ``time.time()`` seconds."""
    expires_at = principal.session_expires_at
    return expires_at.timestamp() if expires_at is not None else math.inf


async def login_expiry(app: Starlette, token: str) -> float | None:
    """``login_deadline`` of the login behind ``token``, None once it is revoked, expired or
    its account is gone: for what outlives one request (the live hub's event streams)."""
    principal = await principal_for_credential(app, token)
    return login_deadline(principal) if principal is not None else None


_Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_Cookie = Annotated[str | None, Depends(_cookie)]

# Each dependency below takes the credentials itself and calls ``_principal`` as a function
# rather than depending on another principal dependency: FastAPI solves every level of a
# dependency tree with a fixed cost of its own, and the extra level was about 7 % of the
# instructions of a request refused at its auth dependency
# (docs/decisions/0008-flat-routers-and-auth-dependencies.md).


async def _principal(
    request: Request, bearer: HTTPAuthorizationCredentials | None, cookie: str | None
) -> Principal | None:
    # The edge middleware has normally resolved the caller already (accounts/identity.py);
    # no request session is asked for here, so a route that needs only the caller (such as
    # /auth/me) opens none.
    cached = request_state(request.scope).principal
    if isinstance(cached, Principal):
        principal = cached
    else:
        token = bearer.credentials if bearer is not None else cookie
        if not token:
            return None
        found = await principal_for_credential(request.app, token)
        if found is None:
            auth_failures_total.inc()
            raise Unauthorized("The token or session is invalid, expired or revoked.")
        principal = found
    # Checked whoever resolved the principal: a cookie is a cookie, cached or not.
    if bearer is None and request.method not in SAFE_METHODS:
        _check_csrf(request, principal)
    request_state(request.scope).principal = principal
    return principal


def _check_csrf(request: Request, principal: Principal) -> None:
    check_csrf(request, principal, request.headers.get(CSRF_HEADER, ""), where=CSRF_HEADER_NAMED)


CSRF_HEADER_NAMED = f"the {CSRF_HEADER} header"
ANONYMOUS_CSRF_SUBJECT = "anonymous"
"""What a CSRF token is signed for before login: the pages' login and registration forms."""


def csrf_subject(principal: Principal | None) -> str:
    """What the CSRF token of a caller is signed for: their login, else the anonymous visit."""
    return str(principal.session_id) if principal is not None else ANONYMOUS_CSRF_SUBJECT


def check_csrf(request: Request, principal: Principal | None, token: str, *, where: str) -> None:
    """The one CSRF rule, for API calls (the token in X-CSRF-Token) and page forms (the token
    in their ``csrf_token`` field): an allowed origin, and the token equal to the CSRF cookie
    and signed for this caller. ``where`` says where the token was expected."""
    settings = settings_of(request)
    if not request_origin_allowed(
        request.headers,
        allowed_origins=settings.security.allowed_origins,
        host=request.headers.get("host"),
    ):
        raise Forbidden(
            "Cookie-authenticated requests that change data must come from this site or an "
            "allowed origin.",
            reason="origin",
        )
    cookie = request.cookies.get(CSRF_COOKIE, "")
    secret = resources_of(request).secret_key
    if not token or token != cookie or not csrf_token_valid(secret, csrf_subject(principal), token):
        raise Forbidden(
            f"Cookie-authenticated requests that change data must send the {CSRF_COOKIE} "
            f"cookie's value in {where}.",
            reason="csrf",
        )


async def _optional_principal(
    request: Request, bearer: _Bearer, cookie: _Cookie
) -> Principal | None:
    return await _principal(request, bearer, cookie)


async def _required_principal(request: Request, bearer: _Bearer, cookie: _Cookie) -> Principal:
    principal = await _principal(request, bearer, cookie)
    if principal is None:
        raise Unauthorized()
    return principal


async def _admin_principal(request: Request, bearer: _Bearer, cookie: _Cookie) -> Principal:
    principal = await _required_principal(request, bearer, cookie)
    ensure_admin(principal)
    return principal


OptionalAccount = Annotated[Principal | None, Depends(_optional_principal)]
CurrentAccount = Annotated[Principal, Depends(_required_principal)]
AdminAccount = Annotated[Principal, Depends(_admin_principal)]


async def _trusted_or_admin(
    request: Request,
    principal: Annotated[Principal | None, Depends(_optional_principal)],
) -> Principal | None:
    # TRUSTED_IPS (decided by the edge middleware from the real client IP) need no login.
    if request_state(request.scope).client_trusted:
        return principal
    if principal is None:
        raise Unauthorized()
    if not principal.is_admin:
        raise Forbidden("This needs an admin account or a trusted address.")
    ensure_admin(principal)
    return principal


TrustedOrAdmin = Annotated[Principal | None, Depends(_trusted_or_admin)]
"""For operator endpoints such as /metrics and detailed health: TRUSTED_IPS or an admin."""
