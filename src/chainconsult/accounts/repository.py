from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.cache import cached
from chainconsult.infra.db.transaction import one_statement
from chainconsult.models.accounts import Account, AccountSession
from chainconsult.models.base import utcnow
from chainconsult.models.identity import TotpFactor

PRINCIPAL_CACHE_TTL_S = 60
"""Authenticated requests resolve their login from the cache for this long at most; logout,
plan and role changes and erasure drop it at once (writes from outside the app, such as the
CLI, wait out the TTL)."""
LAST_SEEN_STEP = dt.timedelta(minutes=1)
"""A login's ``last_seen_at`` is refreshed when it is older than this, not on every request."""


def account_tag(account_id: uuid.UUID) -> str:
    return f"account:{account_id}"


def login_tag(token_hash: bytes) -> str:
    return f"login:{token_hash.hex()}"


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """An unrevoked login, as the principal lookup needs it."""

    session_id: uuid.UUID
    account_id: uuid.UUID
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AccountState:
    """The parts of an account an authenticated request reads on every call."""

    id: uuid.UUID
    email: str
    display_name: str
    role: str
    plan: str
    is_active: bool
    created_at: dt.datetime
    mfa_enabled: bool
    email_verified_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Credentials:
    account_id: uuid.UUID
    password_hash: str
    is_active: bool


def _same_address(email: str) -> ColumnElement[bool]:
    # Both sides lowered by PostgreSQL, as the unique index lower(email) is: one notion of
    # letter case, whatever Python's differs in.
    return func.lower(Account.email) == func.lower(email)


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_email(self, email: str) -> Account | None:
        """The account of a normalised address (accounts.schemas.normalize_email)."""
        query = select(Account).where(_same_address(email))
        return (await self.session.execute(query)).scalar_one_or_none()

    async def credentials(self, email: str) -> Credentials | None:
        """What a login checks, as plain values: they outlive the short transaction that
        reads them, and no ORM object stays in the session."""
        query = select(Account.id, Account.password_hash, Account.is_active).where(
            _same_address(email)
        )
        row = (await self.session.execute(query)).one_or_none()
        return Credentials(*row) if row is not None else None

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

    @cached(
        "accounts.login",
        ttl=PRINCIPAL_CACHE_TTL_S,
        tags=lambda token_hash: [login_tag(token_hash)],
        # Anyone can send made-up tokens: caching the misses would let them fill the cache.
        cache_none=False,
        # Never in one process's memory: a revoked login must be refused by every process
        # from the moment the revocation is answered
        # (docs/decisions/0030-login-revocation-without-l1.md).
        shared_only=True,
    )
    async def login_by_token_hash(self, token_hash: bytes) -> LoginRecord | None:
        """The unrevoked login with this token hash (expired or not: the caller compares).
        Each load also refreshes its ``last_seen_at`` when stale, in one autocommitted
        statement (the caller's session only reads, and is rolled back)."""
        now = utcnow()
        stale = (
            select(AccountSession.id)
            .where(
                AccountSession.token_hash == token_hash,
                AccountSession.revoked_at.is_(None),
                or_(
                    AccountSession.last_seen_at.is_(None),
                    AccountSession.last_seen_at < now - LAST_SEEN_STEP,
                ),
            )
            # A burst of requests with one token: one of them stamps it, none waits for it.
            .with_for_update(skip_locked=True)
        )
        touched = (
            update(AccountSession)
            .where(AccountSession.id.in_(stale.scalar_subquery()))
            .values(last_seen_at=now)
            .returning(AccountSession.id)
            .cte("touched")
        )
        query = select(
            AccountSession.id,
            AccountSession.account_id,
            AccountSession.expires_at,
            select(func.count()).select_from(touched).scalar_subquery(),
        ).where(AccountSession.token_hash == token_hash, AccountSession.revoked_at.is_(None))
        row = await one_statement(self.session, query, {})
        if row is None:
            return None
        return LoginRecord(session_id=row.id, account_id=row.account_id, expires_at=row.expires_at)

    @cached(
        "accounts.state",
        ttl=PRINCIPAL_CACHE_TTL_S,
        tags=lambda account_id: [account_tag(account_id)],
        version=3,  # 2: mfa_enabled, 3: email_verified_at
    )
    async def account_state(self, account_id: uuid.UUID) -> AccountState | None:
        query = select(
            Account.id,
            Account.email,
            Account.display_name,
            Account.role,
            Account.plan,
            Account.is_active,
            Account.created_at,
            exists().where(TotpFactor.account_id == Account.id, TotpFactor.enabled_at.is_not(None)),
            Account.email_verified_at,
        ).where(Account.id == account_id)
        row = (await self.session.execute(query)).one_or_none()
        return AccountState(*row) if row is not None else None

    async def revoke_login(self, session_id: uuid.UUID, now: dt.datetime) -> list[bytes]:
        """Revoke one login; the token hashes revoked (for cache invalidation)."""
        result = await self.session.execute(
            update(AccountSession)
            .where(AccountSession.id == session_id, AccountSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(AccountSession.token_hash)
        )
        return list(result.scalars())
