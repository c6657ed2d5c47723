"""The email of every notification. NotificationService.notify defers one job per
notification in the event's own transaction; its only argument is the notification id."""

from __future__ import annotations

import uuid

import structlog
from procrastinate import JobContext
from pydantic import ValidationError

from chainconsult.infra.jobs import PermanentJobError, Queue, job_transaction, task
from chainconsult.infra.jobs import resources as job_resources
from chainconsult.mail.service import EMAIL_RETRY, EmailOutbox, Outcome
from chainconsult.notifications.emails import NothingToSend, compose

log = structlog.get_logger("chainconsult.notifications")

COMPOSITIONS = 3
"""An erasure of a quoted account between composing and claiming costs one more round; a run
that keeps losing that race (one erasure after another) is retried later."""


class QuotedAccountsChanging(Exception):
    """Every composition of the email quoted an account erased before it could be sent."""


@task(name="notifications.send_email", queue=Queue.default, retry=EMAIL_RETRY)
async def send_notification_email(context: JobContext, *, notification_id: str) -> str:
    """Email one notification to its recipient, reading everything the message says when it
    runs. Returns the delivery outcome, or ``skipped: <why>`` when the notification or its
    recipient is gone or inactive, or what it announces no longer holds."""
    try:
        note_id = uuid.UUID(notification_id)
    except ValueError as exc:
        raise PermanentJobError(f"not a notification id: {notification_id!r}") from exc
    found = job_resources(context)
    outbox = EmailOutbox(settings=found.settings, sessionmaker=found.sessionmaker)
    for _ in range(COMPOSITIONS):
        try:
            async with job_transaction(context) as session:
                email = await compose(session, note_id)
        except NothingToSend as skipped:
            log.info(
                "notification_email_skipped", notification_id=notification_id, reason=str(skipped)
            )
            return f"skipped: {skipped}"
        except ValidationError as exc:
            # Stored data the email cannot say (written by hand, or before a rule): another
            # attempt reads the same. The error names fields, never their values.
            raise PermanentJobError(f"notification cannot be emailed: {exc}") from exc
        outcome = await outbox.deliver(
            key=f"notification:{notification_id}",
            kind=email.kind,
            account_id=email.account_id,
            to=email.to,
            display_name=email.display_name,
            context=email.context.model_dump(mode="json"),
            quoting=email.quoting,
            unsubscribe=True,
        )
        if outcome is not Outcome.quoted_inactive:
            return outcome.value
    raise QuotedAccountsChanging(f"composed {COMPOSITIONS} times, never sent")
