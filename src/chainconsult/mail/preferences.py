"""Which kinds of email a person may turn off (``OPTIONAL_EMAILS``), which they did, and the
signed link that turns one off. The account's email settings page (/account/emails) shows
the same list and turns kinds back on.

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
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.http_errors import InvalidInput, field_error
from chainconsult.infra.security.tokens import same_secret
from chainconsult.models.notifications import EmailOptOut

UNSUBSCRIBE_PATH = "/unsubscribe"


@dataclass(frozen=True, slots=True)
class OptionalEmail:
    kind: str
    label: str
    sent_when: str
    """When it is sent, as the settings page says it ("an expert proposes on ...")."""


OPTIONAL_EMAILS = (
    OptionalEmail("message_digest", "New messages", "messages wait unread for 10 minutes"),
    OptionalEmail(
        "proposal_received", "Proposals on your projects", "an expert proposes on your project"
    ),
    OptionalEmail(
        "project_invitation", "Invitations", "a client invites you to an invite-only project"
    ),
    OptionalEmail(
        "project_matched", "Matching projects", "a new public project fits your skills and chains"
    ),
    OptionalEmail("proposal_accepted", "Proposal accepted", "a client accepts your proposal"),
    OptionalEmail(
        "proposal_declined",
        "Proposal not chosen",
        "a client accepts another proposal or cancels the project",
    ),
    OptionalEmail("project_completed", "Project completed", "a client marks your project complete"),
    OptionalEmail("review_received", "Reviews", "a client reviews your work"),
    OptionalEmail(
        "milestone_changed",
        "Escrow milestones",
        "a milestone's escrow is funded, released, disputed or resolved",
    ),
    OptionalEmail(
        "application_decided",
        "Expert application decided",
        "an admin approves or rejects your application",
    ),
)
"""Every email with an unsubscribe link (the message digest and each notification kind), as
the settings page lists them; tests/mail/test_email_preferences.py holds it to the kinds the
domains send. The emails about the account itself are not optional and not listed."""


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

    async def turned_off(self, account_id: uuid.UUID) -> set[str]:
        found = await self.session.execute(
            select(EmailOptOut.kind).where(EmailOptOut.account_id == account_id)
        )
        return set(found.scalars())

    async def choose(self, account_id: uuid.UUID, receive: Collection[str]) -> None:
        """Receive exactly the optional kinds in ``receive``: the others are turned off, and
        those turned off before (by an unsubscribe link) come back on."""
        optional = {email.kind for email in OPTIONAL_EMAILS}
        if set(receive) - optional:
            raise InvalidInput(
                "That is not an email you can turn on or off.",
                errors=[field_error("receive", "names a kind of email that is not optional")],
            )
        await self.session.execute(
            delete(EmailOptOut).where(
                EmailOptOut.account_id == account_id, EmailOptOut.kind.in_(set(receive))
            )
        )
        if off := optional - set(receive):
            await self.session.execute(
                insert(EmailOptOut)
                .values([{"account_id": account_id, "kind": kind} for kind in sorted(off)])
                .on_conflict_do_nothing(index_elements=["account_id", "kind"])
            )

    async def opt_out(self, account_id: uuid.UUID, kind: str) -> None:
        """Idempotent: a second click changes nothing. (Accounts are never deleted, only
        anonymised, so the row always has its account.)"""
        await self.session.execute(
            insert(EmailOptOut)
            .values(account_id=account_id, kind=kind)
            .on_conflict_do_nothing(index_elements=["account_id", "kind"])
        )
