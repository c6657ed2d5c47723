"""Account jobs: the welcome email after registration."""

from __future__ import annotations

import uuid

import structlog
from procrastinate import JobContext

from chainconsult.infra.jobs import Queue, job_transaction, task
from chainconsult.infra.jobs import resources as job_resources
from chainconsult.mail.jobs import EMAIL_RETRY
from chainconsult.mail.service import EmailOutbox
from chainconsult.models.accounts import Account

log = structlog.get_logger("chainconsult.accounts")


@task(name="accounts.send_welcome_email", queue=Queue.default, retry=EMAIL_RETRY)
async def send_welcome_email(context: JobContext, *, account_id: str) -> str:
    """Welcome a new account. Reads the account when it runs: an account deleted or
    deactivated in the meantime gets nothing."""
    async with job_transaction(context) as session:
        account = await session.get(Account, uuid.UUID(account_id))
        if account is None or not account.is_active:
            log.info("welcome_email_skipped", account_id=account_id)
            return "skipped"
        email, name, role = account.email, account.display_name, account.role
    found = job_resources(context)
    outbox = EmailOutbox(settings=found.settings, sessionmaker=found.sessionmaker)
    outcome = await outbox.deliver(
        key=f"welcome:{account_id}",
        kind="welcome",
        to=email,
        display_name=name,
        context={"role": role},
    )
    return outcome.value
