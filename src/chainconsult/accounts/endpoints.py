from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from chainconsult.accounts.auth import CSRF_COOKIE, SESSION_COOKIE, CurrentAccount
from chainconsult.accounts.login_audit import record_failed_login
from chainconsult.accounts.schemas import (
    AccountResponse,
    LoginRequest,
    RegisterRequest,
    TokenResponse,
)
from chainconsult.accounts.service import AccountService
from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.audit.trail import AuditTrail, Origin, request_origin
from chainconsult.errors import Unauthorized
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.monitoring.business import count_after_commit
from chainconsult.infra.monitoring.metrics import auth_failures_total
from chainconsult.infra.security.tokens import new_csrf_token

router = APIRouter(prefix="/auth", tags=["auth"])


def client_ip(request: Request) -> str | None:
    ip = getattr(request.state, "client_ip", None)
    if isinstance(ip, str):
        return ip
    return request.client.host if request.client else None


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=AccountResponse)
async def register(body: RegisterRequest, session: DbSession, origin: Origin) -> AccountResponse:
    """Create an account. A 409 means the email (in any letter case) is taken."""
    account = await AccountService(session).register(
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        wants_expert=body.role == "expert",
    )
    await AuditTrail(session).record(
        actor_id=account.id,
        action="auth.registered",
        resource_type="account",
        resource_id=account.id,
        origin=origin,
    )
    count_after_commit(session, "user_registered")
    return AccountResponse.model_validate(account)


@router.post("/login", response_model=TokenResponse)
async def login(
    body: LoginRequest, request: Request, response: Response, session: DbSession
) -> TokenResponse:
    """Exchange email and password for a bearer token. Also sets the HttpOnly `session` cookie
    and the `csrf_token` cookie, whose value cookie-authenticated writes echo in X-CSRF-Token.

    Repeated failures for one address (or from one IP) are answered with 429 and Retry-After:
    first a delay that doubles with each failure, then a lockout until the hour is over or an
    admin unlocks the account. Unknown addresses are treated exactly the same. When more
    logins arrive than the server can check in time, the excess is answered with 503 and
    Retry-After."""
    settings = request.app.state.settings
    origin = request_origin(request)
    try:
        result = await AccountService(session).log_in(
            email=body.email,
            password=body.password,
            throttle=LoginThrottle(settings.login_throttle),
            hash_wait_seconds=settings.login_throttle.hash_wait_ms / 1000,
            ttl_seconds=settings.security.session_ttl_seconds,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except Unauthorized:
        auth_failures_total.inc()
        await record_failed_login(request.app.state.sessionmaker, email=body.email, origin=origin)
        raise
    await AuditTrail(session).record(
        actor_id=result.account.id,
        action="auth.login",
        resource_type="account",
        resource_id=result.account.id,
        origin=origin,
    )
    secure = settings.app.is_production
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        max_age=result.expires_in,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        new_csrf_token(request.app.state.secret_key, str(result.session_id)),
        max_age=result.expires_in,
        httponly=False,
        secure=secure,
        samesite="lax",
        path="/",
    )
    return TokenResponse(access_token=result.token, expires_in=result.expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentAccount, response: Response, session: DbSession, origin: Origin
) -> None:
    """Revoke this login on the server: the token and the cookie stop working at once."""
    await AccountService(session).log_out(principal)
    await AuditTrail(session).record(
        actor_id=principal.account_id,
        action="auth.logout",
        resource_type="account",
        resource_id=principal.account_id,
        origin=origin,
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/me", response_model=AccountResponse)
async def me(principal: CurrentAccount) -> AccountResponse:
    """The calling account (cached; a plan or role change shows on the next request)."""
    # The caller was resolved from the cached account state at the edge, with everything
    # this answer holds: no session, no second cache lookup.
    return AccountResponse(
        id=principal.account_id,
        email=principal.email,
        display_name=principal.display_name,
        role=principal.role,
        plan=principal.plan,
        created_at=principal.created_at,
    )
