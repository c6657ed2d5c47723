"""Two-factor login routes: set it up, confirm it, turn it off, and the second step of a
login. The rules are in accounts/mfa.py; logins end in endpoints.start_session."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.auth import CurrentAccount
from chainconsult.accounts.endpoints import check_own_password, start_session
from chainconsult.accounts.identity_schemas import (
    MfaLoginRequest,
    RecoveryCodesResponse,
    TotpConfirmRequest,
    TotpDisableRequest,
    TotpSetupResponse,
)
from chainconsult.accounts.mfa import InvalidCode, MfaService
from chainconsult.accounts.mfa_steps import count_auth_event
from chainconsult.accounts.schemas import TokenResponse
from chainconsult.accounts.service import AccountService
from chainconsult.accounts.sessions import SessionService
from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.audit.trail import AuditTrail, Origin, RequestOrigin, request_origin
from chainconsult.config import settings_of
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.monitoring.metrics import auth_events_total, auth_failures_total
from chainconsult.infra.openapi_problems import problem_responses
from chainconsult.infra.request_state import client_ip
from chainconsult.infra.resources import resources_of

router = APIRouter(prefix="/auth", tags=["auth"])

_ALREADY = "`conflict`: two-factor login is already on (or, to confirm, not set up yet)."


async def _audit(
    session: AsyncSession, principal_id: uuid.UUID, action: str, origin: RequestOrigin
) -> None:
    await AuditTrail(session).record(
        actor_id=principal_id,
        action=action,
        resource_type="account",
        resource_id=principal_id,
        origin=origin,
    )


@router.post(
    "/2fa/setup",
    response_model=TotpSetupResponse,
    responses=problem_responses({401: "`unauthorized`: not logged in.", 409: _ALREADY}),
)
async def set_up_two_factor(
    principal: CurrentAccount, request: Request, session: DbSession, origin: Origin
) -> TotpSetupResponse:
    """Start two-factor login: a new TOTP secret for an authenticator app. Nothing changes
    for logins until `POST /auth/2fa/confirm` proves the app has it; the secret is never
    shown again."""
    setup = await MfaService(session, resources_of(request).secret_key).begin_setup(
        account_id=principal.account_id, email=principal.email
    )
    await _audit(session, principal.account_id, "auth.mfa_setup_started", origin)
    return TotpSetupResponse(secret=setup.secret, otpauth_uri=setup.otpauth_uri)


@router.post(
    "/2fa/confirm",
    response_model=RecoveryCodesResponse,
    responses=problem_responses(
        {
            401: "`unauthorized`: not logged in.",
            403: "`invalid-code`: the code does not match the new secret.",
            409: _ALREADY,
        }
    ),
)
async def confirm_two_factor(
    body: TotpConfirmRequest,
    principal: CurrentAccount,
    request: Request,
    session: DbSession,
    origin: Origin,
) -> RecoveryCodesResponse:
    """Turn two-factor login on with a first code from the app. Answers ten single-use
    recovery codes, shown only this once. Every other login of the account ends (they were
    opened with a password alone)."""
    codes = await MfaService(session, resources_of(request).secret_key).confirm(
        account_id=principal.account_id, code=body.code
    )
    # The account's other logins were opened with a password alone; this one has just
    # shown the second factor.
    await SessionService(session).end_others(principal)
    await _audit(session, principal.account_id, "auth.mfa_enabled", origin)
    count_auth_event(session, "mfa_enabled")
    return RecoveryCodesResponse(recovery_codes=codes)


@router.delete(
    "/2fa",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        {
            401: "`unauthorized`: not logged in.",
            403: "`forbidden` (`reason: password`): wrong password; `invalid-code`: wrong code.",
            409: "`conflict`: two-factor login is not on.",
            429: "`rate-limited`: too many wrong passwords (the login throttle).",
        }
    ),
)
async def turn_off_two_factor(
    body: TotpDisableRequest,
    principal: CurrentAccount,
    request: Request,
    session: DbSession,
    origin: Origin,
) -> None:
    """Turn two-factor login off, with the password and a current code (or an unused
    recovery code). Recovery codes are deleted with the secret."""
    await check_own_password(request, session, principal, body.password)
    await MfaService(session, resources_of(request).secret_key).disable(
        account_id=principal.account_id, code=body.code
    )
    await _audit(session, principal.account_id, "auth.mfa_disabled", origin)
    count_auth_event(session, "mfa_disabled")


@router.post(
    "/login/mfa",
    response_model=TokenResponse,
    responses=problem_responses(
        {
            401: "`invalid-code`: the code or recovery code is wrong or used (`reason: code`), "
            "or the mfa_token has ended: expired, used, or five wrong codes "
            "(`reason: mfa-token`).",
            429: "`rate-limited`: too many wrong passwords and codes for this account or from "
            "this client: the login throttle's delay or lockout, with `Retry-After`.",
        }
    ),
)
async def log_in_second_step(
    body: MfaLoginRequest, request: Request, response: Response, session: DbSession
) -> TokenResponse:
    """Finish a login that answered `mfa_required`: the `mfa_token` with a code from the
    authenticator (good once) or one of the recovery codes (each good once). Answers and sets
    cookies as `POST /auth/login` does. Five wrong codes end the `mfa_token`; every wrong
    code also counts against the account's login throttle, as a wrong password does."""
    try:
        account_id = await MfaService(session, resources_of(request).secret_key).complete(
            mfa_token=body.mfa_token,
            code=body.code,
            recovery_code=body.recovery_code,
            throttle=LoginThrottle(settings_of(request).login_throttle),
            ip=client_ip(request),
        )
    except InvalidCode:
        auth_failures_total.inc()
        auth_events_total.labels(event="mfa_failed").inc()
        raise
    account = await AccountService(session).get(account_id)
    if not account.is_active:
        raise InvalidCode("This account can no longer log in.", reason="mfa-token")
    if body.recovery_code is not None:
        await _audit(session, account_id, "auth.mfa_recovery_code_used", request_origin(request))
    count_auth_event(session, "mfa_login")
    return await start_session(request, response, session, account)
