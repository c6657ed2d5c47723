"""Email jobs. ``send_notification_email`` takes everything it needs as arguments, so any
domain (the marketplace's notifications) can defer it with ``defer_notification_email``
inside its own transaction."""

from __future__ import annotations

from procrastinate import JobContext
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.infra.jobs import Backoff, DeferOptions, PermanentJobError, Queue, defer, task
from chainconsult.infra.jobs import resources as job_resources
from chainconsult.mail.schemas import NotificationKind, validate_payload
from chainconsult.mail.service import EmailOutbox

EMAIL_RETRY = Backoff(max_attempts=10, base_seconds=10, cap_seconds=3600)
"""About ten minutes of retries in the first hour of a mail server outage, then hourly;
the last of ten attempts comes roughly six hours after the first."""


@task(name="mail.send_notification_email", queue=Queue.default, retry=EMAIL_RETRY)
async def send_notification_email(
    context: JobContext,
    *,
    to: str,
    display_name: str,
    kind: str,
    payload: dict[str, object],
    idempotency_key: str,
) -> str:
    """Send one notification email (``kind`` is a NotificationKind)."""
    try:
        checked = validate_payload(kind, payload)
    except ValueError as exc:
        raise PermanentJobError(f"bad payload for {kind!r}: {exc}") from exc
    found = job_resources(context)
    outbox = EmailOutbox(settings=found.settings, sessionmaker=found.sessionmaker)
    outcome = await outbox.deliver(
        key=idempotency_key, kind=kind, to=to, display_name=display_name, context=checked
    )
    return outcome.value


async def defer_notification_email(
    session: AsyncSession,
    *,
    to: str,
    display_name: str,
    kind: NotificationKind,
    payload: dict[str, object],
    idempotency_key: str,
) -> int | None:
    """Queue a notification email in ``session``'s transaction. ``idempotency_key`` names
    the event (e.g. ``f"proposal_accepted:{proposal.id}"``): one email per key, ever. The
    payload is checked now, so a caller's mistake fails its request, not a job later."""
    checked = validate_payload(kind, payload)
    return await defer(
        session,
        send_notification_email,
        DeferOptions(lock=f"email:{idempotency_key}"),
        to=to,
        display_name=display_name,
        kind=kind,
        payload=checked,
        idempotency_key=idempotency_key,
    )
