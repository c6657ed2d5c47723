"""Delivering one email at most once per idempotency key, as far as the outcome is known.

Each attempt first records the key (own transaction), then sends, then records the outcome
(own transaction). A key already recorded as sent or dropped is not sent again, so a job
re-run after a crash, a manual retry, or a second job for the same event sends nothing
twice. The one gap no SMTP client can close: a crash after the server accepted the message
and before the outcome was written. The Message-ID is derived from the key, so such a
duplicate carries the same id and mail clients show it once.

The claim also checks, under a share lock on the recipient's account row, that the account is
still active. Erasure locks that row first (chainconsult.privacy), so either the erasure waits
for the claim and then deletes the delivery row with the others, or the claim waits for the
erasure and sends nothing: no delivery row with an erased person's address is left behind.
The accounts whose words the email quotes (a client's project title or name) are locked and
checked the same way: one erased since the email was composed sends it back to be composed
again, so neither the message nor its recorded subject carries what the erasure removed."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import EmailService, Settings
from chainconsult.infra.db.session import transaction
from chainconsult.infra.email import EmailRejected, Mailer, OutgoingEmail, build_mailer
from chainconsult.infra.jobs import Backoff, PermanentJobError
from chainconsult.mail.preferences import EmailPreferences, unsubscribe_url
from chainconsult.mail.rendering import templates
from chainconsult.mail.repository import EmailDeliveryRepository
from chainconsult.models.jobs import DeliveryStatus

log = structlog.get_logger("chainconsult.email")

EMAIL_RETRY = Backoff(max_attempts=10, base_seconds=10, cap_seconds=3600)
"""For every email task: about ten minutes of retries in the first hour of a mail server
outage, then hourly; the last of ten attempts comes roughly six hours after the first."""


class Outcome(StrEnum):
    sent = "sent"
    dropped = "dropped"
    already_done = "already_done"
    recipient_inactive = "recipient_inactive"
    """The account was deactivated or erased before the message could be claimed."""
    quoted_inactive = "quoted_inactive"
    """An account the message quotes was deactivated or erased after it was composed:
    nothing was sent or recorded; compose it again."""
    unsubscribed = "unsubscribed"
    """The recipient turned this kind of email off (chainconsult.mail.preferences)."""


def message_id(key: str, sender: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "chainconsult.invalid"
    return f"<{digest}@{domain}>"


class EmailOutbox:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.mailer = mailer or build_mailer(settings.email)

    async def deliver(
        self,
        *,
        key: str,
        kind: str,
        account_id: uuid.UUID,
        to: str,
        display_name: str,
        context: dict[str, Any],
        quoting: Collection[uuid.UUID] = (),
        unsubscribe: bool = False,
    ) -> Outcome:
        """Render and send ``kind`` to ``to``, the address of account ``account_id`` (whose
        export and erasure then cover the delivery record), provided the ``quoting``
        accounts, whose words the context carries, are still active; raises
        PermanentJobError when it can never be delivered, any other error when a later
        attempt may succeed. With ``unsubscribe`` the email carries a link that turns its kind
        off for the recipient, and is not sent once they have."""
        public_url = str(self.settings.email.public_url).rstrip("/")
        link = (
            unsubscribe_url(public_url, self.settings.secret_key(), account_id, kind)
            if unsubscribe
            else None
        )
        try:
            rendered = templates.render(
                kind,
                {
                    **context,
                    "display_name": display_name,
                    "email": to,
                    "public_url": public_url,
                    "unsubscribe_url": link,
                },
            )
        except Exception as exc:
            raise PermanentJobError(f"email {kind!r} cannot be rendered: {exc}") from exc
        email = OutgoingEmail(
            to=to,
            to_name=display_name,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id(key, self.settings.email.smtp_from),
            unsubscribe_url=link,
        )
        async with transaction(self.sessionmaker) as session:
            deliveries = EmailDeliveryRepository(session)
            active = await deliveries.active_of({account_id, *quoting})
            if account_id not in active:
                log.info("email_skipped", key=key, reason="recipient inactive")
                return Outcome.recipient_inactive
            if not active.issuperset(quoting):
                log.info("email_recompose", key=key, reason="quoted account inactive")
                return Outcome.quoted_inactive
            if unsubscribe and await EmailPreferences(session).opted_out(account_id, kind):
                log.info("email_skipped", key=key, reason="unsubscribed")
                return Outcome.unsubscribed
            before = await deliveries.claim(
                key=key,
                kind=kind,
                account_id=account_id,
                recipient=to,
                subject=email.subject,
                message_id=email.message_id,
            )
        if before in {DeliveryStatus.sent, DeliveryStatus.dropped}:
            log.info("email_already_delivered", key=key, status=before)
            return Outcome.already_done
        try:
            await self.mailer.send(email)
        except EmailRejected as exc:
            await self._finish(key, DeliveryStatus.failed, str(exc))
            raise PermanentJobError(str(exc)) from exc
        except Exception as exc:
            await self._note_error(key, f"{type(exc).__name__}: {exc}")
            raise
        if self.settings.email.service is EmailService.disabled:
            await self._finish(key, DeliveryStatus.dropped, None)
            return Outcome.dropped
        await self._finish(key, DeliveryStatus.sent, None)
        return Outcome.sent

    async def _finish(self, key: str, status: DeliveryStatus, error: str | None) -> None:
        async with transaction(self.sessionmaker) as session:
            await EmailDeliveryRepository(session).finish(key=key, status=status, error=error)

    async def _note_error(self, key: str, error: str) -> None:
        async with transaction(self.sessionmaker) as session:
            await EmailDeliveryRepository(session).note_error(key=key, error=error[:2000])
