"""The audit entry of a failed login, committed on its own because its request rolls back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.accounts.repository import AccountRepository
from chainconsult.audit.trail import AuditTrail, RequestOrigin
from chainconsult.infra.db.session import transaction


async def record_failed_login(
    sessionmaker: async_sessionmaker[AsyncSession], *, email: str, origin: RequestOrigin
) -> None:
    """A failed login, committed on its own (its request rolls back). The typed email is not
    stored: the entry names the account it matched, if any, by id."""
    async with transaction(sessionmaker) as session:
        account = await AccountRepository(session).by_email(email)
        await AuditTrail(session).record(
            actor_id=None,
            action="auth.login_failed",
            resource_type="account",
            resource_id=account.id if account is not None else None,
            origin=origin,
        )
