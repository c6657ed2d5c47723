"""Email verification, and the one rule that needs it.

A link is mailed at registration and on request; opening it sets ``email_verified_at``
provided the account's address is still the one the link was mailed to (a changed address
needs a link of its own). With REQUIRE_VERIFIED_EMAIL (the default), an unverified account
may log in and look around, but ``require_verified_email`` refuses it the actions that reach
other people: applying as an expert, submitting a project, proposing, messaging."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.auth import _Bearer, _Cookie, _required_principal
from chainconsult.accounts.lifecycle_jobs import send_token_email
from chainconsult.accounts.one_time import InvalidToken, OneTimeTokens
from chainconsult.accounts.service import AccountService, Principal, forget_cached_account
from chainconsult.accounts.throttle import LoginFailureRepository, ThrottleRule, try_again_later
from chainconsult.config import Settings
from chainconsult.errors import Forbidden, TooManyRequests
from chainconsult.infra.jobs import defer
from chainconsult.models.account_tokens import TokenPurpose
from chainconsult.models.accounts import Account
from chainconsult.models.base import utcnow

RESENDS_FREE = 3
"""Verification links per address within LOGIN_THROTTLE_WINDOW before further resends must
wait a doubling delay; past ``RESENDS_LOCKOUT`` none until the window ends: the address may
be someone else's, whose inbox must not be flooded."""
RESENDS_LOCKOUT = 10


def verification_key(email: str) -> str:
    """The throttle counter of resent links for an address (hashed, as login's)."""
    return "verify:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


class EmailUnverified(Forbidden):
    slug = "email-unverified"
    title = "Email address not verified"


UNVERIFIED_RESPONSE: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "`email-unverified` while the account's address is not verified, or "
        "another rule of this action refuses it."
    }
}
"""``responses=`` of a route whose service calls ``require_verified_email``."""


def require_verified_email(principal: Principal) -> None:
    """Refuse an unverified caller (403 ``email-unverified``) where REQUIRE_VERIFIED_EMAIL
    holds. Services call it first thing in every action that reaches other people."""
    if principal.verification_required and not principal.email_verified:
        raise EmailUnverified(
            "Confirm your email address first: open the link we mailed you, or ask for a new "
            "one on /account/security (POST /api/v2/auth/verify-email/resend)."
        )


async def _verified_principal(request: Request, bearer: _Bearer, cookie: _Cookie) -> Principal:
    # Flat, like auth.py's own dependencies (docs/decisions/0008).
    principal = await _required_principal(request, bearer, cookie)
    require_verified_email(principal)
    return principal


VerifiedAccount = Annotated[Principal, Depends(_verified_principal)]
"""For a route whose every use needs a verified address (messaging): a logged-in caller,
refused with 403 ``email-unverified`` while unverified. Routes whose service already calls
``require_verified_email`` use ``CurrentAccount``."""


class EmailVerification:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.tokens = OneTimeTokens(session, settings.secret_key())

    async def send_link(self, account: Account) -> None:
        """Queue a verification link to the account's current address (in this transaction:
        it goes out if and only if the request commits)."""
        row = await self.tokens.issue(
            purpose=TokenPurpose.email_verification,
            account_id=account.id,
            email=account.email,
            ttl_seconds=self.settings.lifecycle.email_verification_ttl_seconds,
        )
        await defer(self.session, send_token_email, token_id=str(row.id))

    async def resend(self, principal: Principal) -> bool:
        """A new link for the caller, unless already verified; whether one was queued. 429
        with Retry-After past the address's limit."""
        account = await AccountService(self.session).get(principal.account_id)
        if account.email_verified_at is not None:
            return False
        window = self.settings.login_throttle
        rule = ThrottleRule(
            RESENDS_FREE, RESENDS_LOCKOUT, window.max_delay_seconds, window.window_seconds
        )
        wait = await LoginFailureRepository(self.session).count_attempt(
            verification_key(account.email), rule, utcnow()
        )
        if wait is not None:
            raise try_again_later(
                TooManyRequests, "Too many verification emails to this address", wait
            )
        await self.send_link(account)
        return True

    async def verify(self, token: str) -> Account:
        """Mark the address the token was mailed to as verified; InvalidToken (400) for a
        bad, used or expired token, or when the account's address has changed since."""
        redeemed = await self.tokens.redeem(TokenPurpose.email_verification, token)
        account = await AccountService(self.session).get(redeemed.account_id)
        if not account.is_active or redeemed.email != account.email:
            raise InvalidToken()
        if account.email_verified_at is None:
            account.email_verified_at = utcnow()
            await self.session.flush()
            forget_cached_account(self.session, account.id)
        return account


async def mark_verified(session: AsyncSession, account: Account) -> None:
    """For accounts an operator creates (create-admin, demo-data): verified as made."""
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
        await session.flush()
        forget_cached_account(session, account.id)
