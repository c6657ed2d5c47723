"""Emails of the account lifecycle: password-reset and verification links, and the notice
that a password changed. Job arguments are ids only; the link's token is derived from the
token row when the job runs (accounts/one_time.py), never stored or passed along."""

from __future__ import annotations

import uuid

import structlog
from procrastinate import JobContext

from chainconsult.accounts.one_time import mailed_token
from chainconsult.infra.jobs import Queue, job_transaction, task
from chainconsult.infra.jobs import resources as job_resources
from chainconsult.mail.service import EMAIL_RETRY, EmailOutbox
from chainconsult.models.account_tokens import AccountToken, TokenPurpose
from chainconsult.models.accounts import Account
from chainconsult.models.base import utcnow

log = structlog.get_logger("chainconsult.accounts")

_KIND = {
    TokenPurpose.password_reset: "password_reset",
    TokenPurpose.email_verification: "verify_email",
}


@task(name="accounts.send_token_email", queue=Queue.default, retry=EMAIL_RETRY)
async def send_token_email(context: JobContext, *, token_id: str) -> str:
    """Mail the link of one token row to its address, unless the row names no account (a
    reset asked for an unknown address), is used or expired, or its account is inactive."""
    async with job_transaction(context) as session:
        row = await session.get(AccountToken, uuid.UUID(token_id))
        account = await session.get(Account, row.account_id) if row and row.account_id else None
        if row is None or account is None or not account.is_active or row.email is None:
            return "skipped"
        if row.used_at is not None or row.expires_at <= utcnow():
            log.info("token_email_skipped", token_id=token_id, reason="used or expired")
            return "skipped"
        purpose, to, name = TokenPurpose(row.purpose), row.email, account.display_name
        seconds = (row.expires_at - row.created_at).total_seconds()
    found = job_resources(context)
    outbox = EmailOutbox(settings=found.settings, sessionmaker=found.sessionmaker)
    outcome = await outbox.deliver(
        key=f"{purpose.value}:{token_id}",
        kind=_KIND[purpose],
        account_id=account.id,
        to=to,
        display_name=name,
        context={
            "token": mailed_token(found.settings.secret_key(), purpose, uuid.UUID(token_id)),
            "valid_minutes": round(seconds / 60),
            "valid_hours": round(seconds / 3600),
        },
    )
    return outcome.value


@task(name="accounts.send_password_reset_notice", queue=Queue.default, retry=EMAIL_RETRY)
async def send_password_reset_notice(context: JobContext, *, account_id: str) -> str:
    """Tell the account's owner that its password was reset and every session ended."""
    return await _password_notice(context, account_id, "reset")


@task(name="accounts.send_password_changed_notice", queue=Queue.default, retry=EMAIL_RETRY)
async def send_password_changed_notice(context: JobContext, *, account_id: str) -> str:
    """Tell the account's owner that its password was changed and other sessions ended."""
    return await _password_notice(context, account_id, "changed")


async def _password_notice(context: JobContext, account_id: str, how: str) -> str:
    async with job_transaction(context) as session:
        account = await session.get(Account, uuid.UUID(account_id))
        if account is None or not account.is_active:
            return "skipped"
        email, name = account.email, account.display_name
    found = job_resources(context)
    outbox = EmailOutbox(settings=found.settings, sessionmaker=found.sessionmaker)
    outcome = await outbox.deliver(
        # One notice per job: a retry of the job is the same notice, a new change a new one.
        key=f"password_{how}:{context.job.id}",
        kind="password_changed",
        account_id=uuid.UUID(account_id),
        to=email,
        display_name=name,
        context={"how": how},
    )
    return outcome.value
