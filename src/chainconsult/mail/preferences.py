"""Which kinds of email a person turned off, and the signed link that turns one off.

Every email that is not about the account's security (the message digest, the notification
emails) carries an unsubscribe link for its own kind, in the text and as `List-Unsubscribe`
with RFC 8058 one-click `List-Unsubscribe-Post`. The link needs no login: its token is the
account id and the kind, signed with SECRET_KEY, and it never expires (a mail archive's old
link still works). A changed SECRET_KEY invalidates the links already sent; the next email
carries a new one."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.security.tokens import same_secret
from chainconsult.models.notifications import EmailOptOut

UNSUBSCRIBE_PATH = "/unsubscribe"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    account_id: uuid.UUID
    kind: str

    @property
    def label(self) -> str:
        """The kind as a person reads it: ``message_digest`` is "message digest"."""
        return self.kind.replace("_", " ")


def _signature(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, f"unsubscribe.v1.{payload}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:20]).decode().rstrip("=")


def unsubscribe_token(secret: bytes, account_id: uuid.UUID, kind: str) -> str:
    payload = f"{account_id.hex}.{kind}"
    return f"{payload}.{_signature(secret, payload)}"


def read_unsubscribe_token(secret: bytes, token: str) -> Unsubscribe | None:
    """What a token turns off, or None when it was not signed by us."""
    payload, _, signature = token.rpartition(".")
    account, _, kind = payload.partition(".")
    if not kind or not token.isascii() or not same_secret(signature, _signature(secret, payload)):
        return None
    try:
        return Unsubscribe(uuid.UUID(hex=account), kind)
    except (ValueError, binascii.Error):
        return None


def unsubscribe_url(public_url: str, secret: bytes, account_id: uuid.UUID, kind: str) -> str:
    token = unsubscribe_token(secret, account_id, kind)
    return f"{public_url.rstrip('/')}{UNSUBSCRIBE_PATH}?token={quote(token, safe='')}"


class EmailPreferences:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def opted_out(self, account_id: uuid.UUID, kind: str) -> bool:
        found = await self.session.execute(
            select(EmailOptOut.kind).where(
                EmailOptOut.account_id == account_id, EmailOptOut.kind == kind
            )
        )
        return found.first() is not None

    async def opt_out(self, account_id: uuid.UUID, kind: str) -> None:
        """Idempotent: a second click changes nothing. (Accounts are never deleted, only
        anonymised, so the row always has its account.)"""
        await self.session.execute(
            insert(EmailOptOut)
            .values(account_id=account_id, kind=kind)
            .on_conflict_do_nothing(index_elements=["account_id", "kind"])
        )
