"""Single-use tokens mailed to an address (password reset, email verification).

A token is ``HMAC-SHA256(SECRET_KEY, purpose.row_id)``: the request that creates the row
defers a job with the row id only, and the job derives the same token when it writes the
email, so the token is in no table, no job argument and no log, and a retried job mails the
same link. The row keeps only the token's SHA-256, by which a presented token is found: a
changed character finds nothing. Redeeming marks the row used in the same statement that
finds it, so two requests with one token cannot both succeed."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.errors import BadRequest
from chainconsult.models.account_tokens import AccountToken, TokenPurpose
from chainconsult.models.base import utcnow


class InvalidToken(BadRequest):
    slug = "invalid-token"
    title = "Invalid or expired link"

    def __init__(
        self,
        detail: str = "This link is invalid, has expired or was already used; ask for a new one.",
        **kw: Any,
    ) -> None:
        super().__init__(detail, **kw)


def mailed_token(secret: bytes, purpose: TokenPurpose, token_id: uuid.UUID) -> str:
    mac = hmac.new(secret, f"{purpose.value}.{token_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Redeemed:
    account_id: uuid.UUID
    email: str | None


class OneTimeTokens:
    def __init__(self, session: AsyncSession, secret: bytes) -> None:
        self.session = session
        self.secret = secret

    async def issue(
        self,
        *,
        purpose: TokenPurpose,
        account_id: uuid.UUID | None,
        email: str | None,
        ttl_seconds: int,
    ) -> AccountToken:
        """A new row whose token can be derived with ``mailed_token``; flushed."""
        token_id = uuid.uuid4()
        row = AccountToken(
            id=token_id,
            purpose=purpose.value,
            account_id=account_id,
            email=email,
            token_hash=_digest(mailed_token(self.secret, purpose, token_id)),
            expires_at=utcnow() + dt.timedelta(seconds=ttl_seconds),
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def redeem(self, purpose: TokenPurpose, token: str) -> Redeemed:
        """Use up ``token``; InvalidToken when it is unknown, of another purpose, expired,
        used, or names no account."""
        now = utcnow()
        result = await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.token_hash == _digest(token),
                AccountToken.purpose == purpose.value,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
                AccountToken.account_id.is_not(None),
            )
            .values(used_at=now)
            .returning(AccountToken.account_id, AccountToken.email)
        )
        row = result.one_or_none()
        if row is None or row[0] is None:
            raise InvalidToken()
        return Redeemed(account_id=row[0], email=row[1])

    async def retire(self, purpose: TokenPurpose, account_id: uuid.UUID) -> None:
        """Use up every open token of ``purpose`` for the account (after a reset, the other
        links mailed before it must not work either)."""
        await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.account_id == account_id,
                AccountToken.purpose == purpose.value,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
