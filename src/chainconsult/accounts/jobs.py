"""Account jobs: the welcome email after registration, and the purge of failed-login
counters whose window has ended."""

from __future__ import annotations

import uuid

import structlog
from procrastinate import JobContext

from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.infra.jobs import Queue, job_transaction, task
from chainconsult.infra.jobs import resources as job_resources
from chainconsult.mail.service import EMAIL_RETRY, EmailOutbox
from chainconsult.models.accounts import Account

log = structlog.get_logger("chainconsult.accounts")


@task(name="accounts.send_welcome_email", queue=Queue.default, retry=EMAIL_RETRY)
async def send_welcome_email(context: JobContext, *, account_id: str) -> str:
    """Welcome a new account. Its only argument is the account id (procrastinate stores and
    logs arguments): the address and name are read when it runs, so an account deleted,
    deactivated or erased in the meantime gets nothing."""
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
        account_id=uuid.UUID(account_id),
        to=email,
        display_name=name,
        context={"role": role},
    )
    return outcome.value


@task(name="accounts.purge_login_counters", queue=Queue.low, retry=None)
async def purge_login_counters(context: JobContext, timestamp: int) -> int:
    """Delete failed-login counters whose window has ended (they no longer delay anyone);
    returns how many."""
    found = job_resources(context)
    async with job_transaction(context) as session:
        return await LoginThrottle(found.settings.login_throttle).purge_expired(session)
