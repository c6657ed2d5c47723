from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.auth import CSRF_COOKIE, SESSION_COOKIE, CurrentAccount
from chainconsult.accounts.login_audit import record_failed_login
from chainconsult.accounts.mfa_steps import MfaRequiredResponse, second_step_for
from chainconsult.accounts.schemas import (
    AccountResponse,
    LoginRequest,
    RegisterRequest,
    TokenResponse,
)
from chainconsult.accounts.service import AccountService, Principal
from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.accounts.verification import EmailVerification
from chainconsult.audit.trail import AuditTrail, Origin, request_origin
from chainconsult.config import settings_of
from chainconsult.errors import Forbidden, Unauthorized
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.monitoring.business import count_after_commit
from chainconsult.infra.monitoring.metrics import auth_failures_total
from chainconsult.infra.openapi_problems import problem_responses
from chainconsult.infra.request_state import client_ip
from chainconsult.infra.resources import resources_of
from chainconsult.infra.security.tokens import new_csrf_token
from chainconsult.models.accounts import Account

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=AccountResponse)
async def register(
    body: RegisterRequest, request: Request, session: DbSession, origin: Origin
) -> AccountResponse:
    """Create an account and mail a link that verifies its address. A 409 means the email
    (in any letter case) is taken."""
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
    await EmailVerification(session, settings_of(request)).send_link(account)
    count_after_commit(session, "user_registered")
    return AccountResponse.model_validate(account)


@router.post(
    "/login",
    response_model=TokenResponse | MfaRequiredResponse,
    responses=problem_responses(
        {
            401: "`unauthorized`: wrong email or password.",
            429: "`rate-limited`: too many failed logins; see Retry-After.",
            503: "`service-unavailable` (`reason: login-busy`): too many logins being checked.",
        }
    ),
)
async def login(
    body: LoginRequest, request: Request, response: Response, session: DbSession
) -> TokenResponse | MfaRequiredResponse:
    """Exchange email and password for a bearer token. Also sets the HttpOnly `session` cookie
    and the `csrf_token` cookie, whose value cookie-authenticated writes echo in X-CSRF-Token.
    For an account with two-factor login the answer is `{mfa_required: true, mfa_token}`
    instead, with no session: `POST /auth/login/mfa` finishes the login.

    Repeated failures for one address (or from one IP) are answered with 429 and Retry-After:
    first a delay that doubles with each failure, then a lockout until the hour is over or an
    admin unlocks the account. Unknown addresses are treated exactly the same. When more
    logins arrive than the server can check in time, the excess is answered with 503 and
    Retry-After."""
    origin = request_origin(request)
    try:
        account = await password_checked(
            request, session, email=body.email, password=body.password, settle=False
        )
    except Unauthorized:
        auth_failures_total.inc()
        await record_failed_login(
            resources_of(request).sessionmaker, email=body.email, origin=origin
        )
        raise
    pending = await second_step_for(request, session, account.id)
    if pending is not None:
        # Not a login yet: the attempt stays counted until the code is right, so guessing
        # codes goes through the same delays and lockout as guessing passwords.
        return pending
    throttle = LoginThrottle(settings_of(request).login_throttle)
    await throttle.succeeded(session, email=account.email, ip=client_ip(request))
    return await start_session(request, response, session, account)


async def password_checked(
    request: Request, session: AsyncSession, *, email: str, password: str, settle: bool = True
) -> Account:
    """The account whose password this is, through the login throttle: every route that
    takes a password checks it here, so none is a way around the throttle. ``settle``: see
    ``AccountService.check_password``."""
    settings = settings_of(request)
    return await AccountService(session).check_password(
        email=email,
        password=password,
        throttle=LoginThrottle(settings.login_throttle),
        gate=request.app.state.login_gate,
        hash_wait_seconds=settings.login_throttle.hash_wait_ms / 1000,
        ip=client_ip(request),
        settle=settle,
    )


async def check_own_password(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    password: str,
    *,
    refusal: str = "Wrong password.",
) -> None:
    """A logged-in caller's password (to change it, turn off 2FA, erase the account),
    checked through the login throttle like a login: a wrong one is 403 ``password`` with
    ``refusal`` as its detail, since the login itself is fine."""
    try:
        await password_checked(request, session, email=principal.email, password=password)
    except Unauthorized:
        auth_failures_total.inc()
        raise Forbidden(refusal, reason="password") from None


async def start_session(
    request: Request, response: Response, session: AsyncSession, account: Account
) -> TokenResponse:
    """Open a login for an account that has proved who it is (password, and second factor
    or wallet signature), audit it and set its cookies: every way of logging in ends here."""
    settings = settings_of(request)
    result = await AccountService(session).open_login(
        account,
        ttl_seconds=settings.security.session_ttl_seconds,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    await AuditTrail(session).record(
        actor_id=result.account.id,
        action="auth.login",
        resource_type="account",
        resource_id=result.account.id,
        origin=request_origin(request),
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
        new_csrf_token(resources_of(request).secret_key, str(result.session_id)),
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
        mfa_enabled=principal.mfa_enabled,
        email_verified=principal.email_verified,
    )
