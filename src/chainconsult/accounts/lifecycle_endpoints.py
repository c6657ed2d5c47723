"""The account lifecycle API: password reset and change, email verification, and sessions.
Each action writes an audit entry (ids only: no address, no token)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from chainconsult.accounts.auth import AdminAccount, CurrentAccount
from chainconsult.accounts.endpoints import check_own_password
from chainconsult.accounts.lifecycle_schemas import (
    PasswordChangeRequest,
    ResetConfirmRequest,
    ResetRequest,
    ResetRequested,
    SessionResponse,
    VerifyEmailRequest,
    VerifyResendResponse,
)
from chainconsult.accounts.mfa_steps import count_auth_event
from chainconsult.accounts.recovery import PasswordRecovery
from chainconsult.accounts.service import AccountService
from chainconsult.accounts.sessions import SessionService
from chainconsult.accounts.verification import EmailVerification
from chainconsult.audit.trail import AuditTrail, Origin
from chainconsult.config import settings_of
from chainconsult.infra.db.session import DbSession

router = APIRouter(prefix="/auth", tags=["auth"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])


Described = dict[str, str]
_BAD_LINK: Described = {
    "description": "`invalid-token`: the link is unknown, changed, expired or already used."
}
_THROTTLED: Described = {
    "description": "`rate-limited`: too many requests for this address or from this client."
}
_IP_LIMITED: Described = {
    "description": "`rate-limited`: too many requests from this client (RATE_LIMIT_AUTH); "
    "past the limit for one address the answer is still 202, without an email."
}
_LOGGED_OUT: Described = {"description": "`unauthorized`: not logged in."}


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResetRequested,
    responses={429: _IP_LIMITED},
)
async def request_password_reset(
    body: ResetRequest, request: Request, session: DbSession, origin: Origin
) -> ResetRequested:
    """Mail a single-use link to `{PUBLIC_URL}/reset-password?token=...` if the address has
    an account. The answer is the same whether or not it has one."""
    await PasswordRecovery(session, settings_of(request)).request_reset(email=body.email)
    count_auth_event(session, "reset_requested")
    await AuditTrail(session).record(
        actor_id=None,
        action="auth.password_reset_requested",
        resource_type="account",
        resource_id=None,
        origin=origin,
    )
    return ResetRequested()


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={400: _BAD_LINK, 429: _THROTTLED},
)
async def confirm_password_reset(
    body: ResetConfirmRequest, request: Request, session: DbSession, origin: Origin
) -> None:
    """Set a new password with a reset link's token: every session of the account ends, and
    a notice is mailed."""
    recovery = PasswordRecovery(session, settings_of(request))
    account_id = await recovery.confirm_reset(token=body.token, new_password=body.new_password)
    count_auth_event(session, "reset_completed")
    await AuditTrail(session).record(
        actor_id=account_id,
        action="auth.password_reset",
        resource_type="account",
        resource_id=account_id,
        origin=origin,
    )


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        401: _LOGGED_OUT,
        403: {"description": "`password`: the current password is wrong."},
        429: {"description": "Too many wrong passwords: the login throttle applies."},
    },
)
async def change_password(
    body: PasswordChangeRequest,
    principal: CurrentAccount,
    request: Request,
    session: DbSession,
    origin: Origin,
) -> None:
    """Change the password: every other session ends (this one stays), and a notice is
    mailed."""
    await check_own_password(
        request,
        session,
        principal,
        body.current_password,
        refusal="The current password is wrong.",
    )
    await PasswordRecovery(session, settings_of(request)).change_password(
        principal=principal, new_password=body.new_password
    )
    count_auth_event(session, "password_changed")
    await AuditTrail(session).record(
        actor_id=principal.account_id,
        action="auth.password_changed",
        resource_type="account",
        resource_id=principal.account_id,
        origin=origin,
    )


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={400: _BAD_LINK},
)
async def verify_email(
    body: VerifyEmailRequest, request: Request, session: DbSession, origin: Origin
) -> None:
    """Confirm the address a verification link was mailed to (no login needed: the token is
    the proof)."""
    account = await EmailVerification(session, settings_of(request)).verify(body.token)
    count_auth_event(session, "email_verified")
    await AuditTrail(session).record(
        actor_id=account.id,
        action="auth.email_verified",
        resource_type="account",
        resource_id=account.id,
        origin=origin,
    )


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VerifyResendResponse,
    responses={401: _LOGGED_OUT, 429: _THROTTLED},
)
async def resend_verification(
    principal: CurrentAccount, request: Request, session: DbSession
) -> VerifyResendResponse:
    """Mail a new verification link to the caller's address (`already_verified` when there is
    nothing to verify)."""
    sent = await EmailVerification(session, settings_of(request)).resend(principal)
    return VerifyResendResponse(status="sent" if sent else "already_verified")


@router.get("/sessions", response_model=list[SessionResponse], responses={401: _LOGGED_OUT})
async def list_sessions(principal: CurrentAccount, session: DbSession) -> list[SessionResponse]:
    """The caller's live sessions, most recently used first; `current` marks this one."""
    logins = await SessionService(session).of(principal)
    return [SessionResponse.model_validate(login, from_attributes=True) for login in logins]


@router.delete(
    # Typed in the path, so /sessions/end-others is not also a session id to DELETE.
    "/sessions/{session_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: _LOGGED_OUT, 404: {"description": "`not-found`: no such session of yours."}},
)
async def end_session(
    session_id: uuid.UUID, principal: CurrentAccount, session: DbSession, origin: Origin
) -> None:
    """End one of the caller's sessions: its token is refused by every server at once."""
    await SessionService(session).end(principal, session_id)
    await AuditTrail(session).record(
        actor_id=principal.account_id,
        action="auth.session_ended",
        resource_type="session",
        resource_id=session_id,
        origin=origin,
    )


@router.post(
    "/sessions/end-others",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: _LOGGED_OUT},
)
async def end_other_sessions(principal: CurrentAccount, session: DbSession, origin: Origin) -> None:
    """End every session of the caller but this one."""
    await SessionService(session).end_others(principal)
    await AuditTrail(session).record(
        actor_id=principal.account_id,
        action="auth.other_sessions_ended",
        resource_type="account",
        resource_id=principal.account_id,
        origin=origin,
    )


@admin_router.post(
    "/users/{account_id}/sessions/end",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        401: _LOGGED_OUT,
        403: {"description": "`forbidden`: not an admin."},
        404: {"description": "`not-found`: no such account."},
    },
)
async def end_user_sessions(
    account_id: uuid.UUID, admin: AdminAccount, session: DbSession, origin: Origin
) -> None:
    """End every session of an account (a compromised login, a departing user)."""
    await AccountService(session).get(account_id)
    await SessionService(session).end_all(account_id)
    await AuditTrail(session).record(
        actor_id=admin.account_id,
        action="auth.sessions_ended_by_admin",
        resource_type="account",
        resource_id=account_id,
        origin=origin,
    )
