"""Password reset by email and password change. Services flush; the request commits.

A reset request does the same work whatever the address: one throttle count, one lookup,
one token row (naming no account when there is none), one job (which then mails nothing).
So the answer, its timing and its database writes do not tell whether an account exists."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.lifecycle_jobs import (
    send_password_changed_notice,
    send_password_reset_notice,
    send_token_email,
)
from chainconsult.accounts.one_time import InvalidToken, OneTimeTokens
from chainconsult.accounts.repository import AccountRepository
from chainconsult.accounts.service import AccountService, Principal, forget_cached_account
from chainconsult.accounts.sessions import SessionService
from chainconsult.accounts.throttle import LoginFailureRepository, LoginThrottle, ThrottleRule
from chainconsult.config import Settings
from chainconsult.infra.jobs import defer
from chainconsult.infra.security.passwords import passwords
from chainconsult.models.account_tokens import TokenPurpose
from chainconsult.models.base import utcnow

RESET_REQUESTS_FREE = 3
"""Reset emails per address within LOGIN_THROTTLE_WINDOW before further requests must wait
a doubling delay; past ``RESET_REQUESTS_LOCKOUT`` none until the window ends. Keeps the
address's inbox from being flooded; the client IP is limited by RATE_LIMIT_AUTH."""
RESET_REQUESTS_LOCKOUT = 10


def reset_key(email: str) -> str:
    """The throttle counter of reset requests for a normalised address (hashed, as login's)."""
    return "reset:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


class PasswordRecovery:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.accounts = AccountRepository(session)
        self.tokens = OneTimeTokens(session, settings.secret_key())

    async def request_reset(self, *, email: str) -> None:
        """Count the request against the address, then queue the email if the address has an
        active account and is within its limit. The caller's answer is the same in every
        case (202): a throttled address, like an unknown one, just gets no email."""
        window = self.settings.login_throttle
        rule = ThrottleRule(
            RESET_REQUESTS_FREE,
            RESET_REQUESTS_LOCKOUT,
            window.max_delay_seconds,
            window.window_seconds,
        )
        wait = await LoginFailureRepository(self.session).count_attempt(
            reset_key(email), rule, utcnow()
        )
        if wait is not None:
            return
        found = await self.accounts.by_email(email)
        account = found if found is not None and found.is_active else None
        row = await self.tokens.issue(
            purpose=TokenPurpose.password_reset,
            account_id=account.id if account else None,
            email=account.email if account else None,
            ttl_seconds=self.settings.lifecycle.password_reset_ttl_seconds,
        )
        await defer(self.session, send_token_email, token_id=str(row.id))

    async def confirm_reset(self, *, token: str, new_password: str) -> uuid.UUID:
        """Set the new password of the token's account, end every one of its sessions, use up
        its other reset links and mail a notice; returns the account id. InvalidToken (400)
        for a bad, used or expired token."""
        redeemed = await self.tokens.redeem(TokenPurpose.password_reset, token)
        account = await AccountService(self.session).get(redeemed.account_id)
        if not account.is_active or redeemed.email != account.email:
            # A link mailed to an address the account no longer has opens nothing.
            raise InvalidToken()
        account.password_hash = await passwords.hash(new_password)
        if account.email_verified_at is None:
            # The link reached this address: that is what verification proves.
            account.email_verified_at = utcnow()
        await self.tokens.retire(TokenPurpose.password_reset, account.id)
        await self.session.flush()
        # Whoever guessed at the old password locked the owner out; the owner is back.
        await LoginThrottle(self.settings.login_throttle).clear_account(
            self.session, email=account.email
        )
        await SessionService(self.session).end_all(account.id)
        await defer(self.session, send_password_reset_notice, account_id=str(account.id))
        return account.id

    async def change_password(self, *, principal: Principal, new_password: str) -> None:
        """Set a new password and end every other session of the account; the caller's own
        stays logged in. The caller has checked the current one (``check_own_password``)."""
        account = await AccountService(self.session).get(principal.account_id)
        account.password_hash = await passwords.hash(new_password)
        await self.session.flush()
        forget_cached_account(self.session, account.id)
        await SessionService(self.session).end_others(principal)
        await defer(self.session, send_password_changed_notice, account_id=str(account.id))
