"""A user's logins ("sessions"): list them, end one, end all but the current one; an admin
ends all of someone's. Ending a login revokes it in the database and drops it from the
shared cache before the answer goes out; no process keeps logins in its own memory
(accounts/repository.py), so every process refuses the token from then on."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.repository import login_tag
from chainconsult.accounts.service import Principal, forget_cached_account
from chainconsult.errors import NotFound
from chainconsult.infra.cache import invalidate_after_commit
from chainconsult.infra.live import logins_ended_after_commit
from chainconsult.models.accounts import AccountSession
from chainconsult.models.base import utcnow


@dataclass(frozen=True, slots=True)
class LoginView:
    id: uuid.UUID
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    ip: str | None
    user_agent: str | None
    current: bool


class SessionService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, principal: Principal) -> list[LoginView]:
        """The caller's live logins, most recently used first; ``current`` marks the one the
        request came with."""
        query = (
            select(
                AccountSession.id,
                AccountSession.created_at,
                AccountSession.last_seen_at,
                AccountSession.ip,
                AccountSession.user_agent,
            )
            .where(
                AccountSession.account_id == principal.account_id,
                AccountSession.revoked_at.is_(None),
                AccountSession.expires_at > utcnow(),
            )
            .order_by(
                AccountSession.last_seen_at.desc().nulls_last(), AccountSession.created_at.desc()
            )
        )
        rows = (await self.session.execute(query)).all()
        return [LoginView(*row, current=row[0] == principal.session_id) for row in rows]

    async def end(self, principal: Principal, session_id: uuid.UUID) -> None:
        """End one of the caller's own logins (the current one too); 404 for any other."""
        revoked = await self._revoke(
            AccountSession.id == session_id, AccountSession.account_id == principal.account_id
        )
        if not revoked:
            raise NotFound("No such session.")

    async def end_others(self, principal: Principal) -> None:
        await self._revoke(
            AccountSession.account_id == principal.account_id,
            AccountSession.id != principal.session_id,
        )

    async def end_all(self, account_id: uuid.UUID) -> None:
        """Every login of the account (password reset, an admin's action); its cached state
        goes too, since what ended them (a reset) may have changed it."""
        await self._revoke(AccountSession.account_id == account_id)
        forget_cached_account(self.session, account_id)

    async def _revoke(self, *conditions: ColumnElement[bool]) -> list[bytes]:
        result = await self.session.execute(
            update(AccountSession)
            .where(*conditions, AccountSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(AccountSession.token_hash, AccountSession.account_id)
        )
        rows = result.all()
        revoked = [token_hash for token_hash, _ in rows]
        invalidate_after_commit(self.session, [login_tag(h) for h in revoked])
        # After the invalidation: their event streams end now, not at the next heartbeat.
        logins_ended_after_commit(self.session, [account_id for _, account_id in rows])
        return revoked
