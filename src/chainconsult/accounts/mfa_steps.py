"""The second step of a login, as the password login (accounts/endpoints.py) and the wallet
login (accounts/siwe_endpoints.py) begin it: for an account with two-factor login, a pending
``mfa_token`` instead of a session."""

from __future__ import annotations

import uuid

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.identity_schemas import MfaRequiredResponse
from chainconsult.accounts.mfa import MfaService
from chainconsult.audit.trail import AuditTrail, request_origin
from chainconsult.infra.db.session import after_commit
from chainconsult.infra.monitoring.metrics import auth_events_total
from chainconsult.infra.resources import resources_of

__all__ = ["MfaRequiredResponse", "count_auth_event", "second_step_for"]


async def second_step_for(
    request: Request, session: AsyncSession, account_id: uuid.UUID
) -> MfaRequiredResponse | None:
    """The pending second step when the account has two-factor login on, else None."""
    service = MfaService(session, resources_of(request).secret_key)
    if not await service.is_enabled(account_id):
        return None
    challenge = await service.challenge(account_id)
    await AuditTrail(session).record(
        actor_id=account_id,
        action="auth.mfa_challenged",
        resource_type="account",
        resource_id=account_id,
        origin=request_origin(request),
    )
    return MfaRequiredResponse(mfa_token=challenge.token, expires_in=challenge.expires_in)


def count_auth_event(session: AsyncSession, event: str) -> None:
    """Bump ``auth_events_total{event}`` once the request's transaction commits."""

    async def bump() -> None:
        auth_events_total.labels(event=event).inc()

    after_commit(session, bump)
