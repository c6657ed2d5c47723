from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.accounts import Account, AccountSession


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_email(self, email: str) -> Account | None:
        query = select(Account).where(func.lower(Account.email) == email.strip().lower())
        return (await self.session.execute(query)).scalar_one_or_none()

    async def by_id(self, account_id: uuid.UUID) -> Account | None:
        return await self.session.get(Account, account_id)

    async def lock(self, account_id: uuid.UUID) -> None:
        """Hold the account's row lock until the transaction ends."""
        await self.session.execute(
            select(Account.id).where(Account.id == account_id).with_for_update()
        )

    async def add(self, account: Account) -> Account:
        self.session.add(account)
        await self.session.flush()
        return account

    async def add_session(self, login: AccountSession) -> AccountSession:
        self.session.add(login)
        await self.session.flush()
        return login

    async def active_login(
        self, token_hash: bytes, now: dt.datetime
    ) -> tuple[AccountSession, Account] | None:
        query = (
            select(AccountSession, Account)
            .join(Account, Account.id == AccountSession.account_id)
            .where(
                AccountSession.token_hash == token_hash,
                AccountSession.revoked_at.is_(None),
                AccountSession.expires_at > now,
                Account.is_active.is_(True),
            )
        )
        row = (await self.session.execute(query)).one_or_none()
        return (row[0], row[1]) if row else None

    async def revoke_login(self, session_id: uuid.UUID, now: dt.datetime) -> None:
        await self.session.execute(
            update(AccountSession)
            .where(AccountSession.id == session_id, AccountSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_all_logins(self, account_id: uuid.UUID, now: dt.datetime) -> None:
        await self.session.execute(
            update(AccountSession)
            .where(AccountSession.account_id == account_id, AccountSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
