"""Every job the workers run and every periodic schedule, registered in one place.

Importing this module imports each domain's ``jobs.py`` (which registers its tasks on the
App); ``register_schedules`` sets the periodic runs, ``worker_resources`` what tasks may use.
The purge covers one kind of data per ``PurgeRule``: the marketplace's read notifications
and audit rows past retention are one rule each, using ``retention.notification_days`` and
``retention.audit_days`` (NOTIFICATION_RETENTION_DAYS, AUDIT_RETENTION_DAYS)."""

from __future__ import annotations

from procrastinate import App
from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import chainconsult.accounts.jobs
import chainconsult.mail.jobs  # noqa: F401  (registers its tasks)
from chainconsult.config import Settings
from chainconsult.infra.jobs import JobResources
from chainconsult.infra.jobs.maintenance import (
    PurgeRule,
    analyze_hot_tables,
    days,
    purge_expired_rows,
    recover_stalled_jobs,
)
from chainconsult.models import AccountSession, EmailDelivery, JobFailure

PURGE_RULES = (
    PurgeRule(
        "expired_logins",
        AccountSession.__table__,  # type: ignore[arg-type]
        lambda now, keep: or_(
            AccountSession.expires_at < now - days(keep.session_days),
            and_(
                AccountSession.revoked_at.is_not(None),
                AccountSession.revoked_at < now - days(keep.session_days),
            ),
        ),
    ),
    PurgeRule(
        "job_failures",
        JobFailure.__table__,  # type: ignore[arg-type]
        lambda now, keep: JobFailure.created_at < now - days(keep.job_days),
    ),
    PurgeRule(
        "email_deliveries",
        EmailDelivery.__table__,  # type: ignore[arg-type]
        lambda now, keep: EmailDelivery.updated_at < now - days(keep.job_days),
    ),
)

HOT_TABLES = (
    "accounts",
    "account_sessions",
    "procrastinate_jobs",
    "procrastinate_events",
    "email_deliveries",
)


def every(seconds: int) -> str:
    """A cron line for "every N seconds" (N divides 60) or "every N minutes"."""
    if seconds < 60:
        # procrastinate reads a sixth column as seconds.
        return f"* * * * * */{seconds}"
    return f"*/{seconds // 60} * * * *"


def register_schedules(app: App, settings: Settings) -> None:
    app.periodic(cron=every(settings.jobs.recovery_interval_seconds))(recover_stalled_jobs)
    # Nightly, off the hour when other cron jobs of the host tend to pile up.
    app.periodic(cron="17 3 * * *")(purge_expired_rows)
    app.periodic(cron="47 3 * * *")(analyze_hot_tables)


def worker_resources(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> JobResources:
    return JobResources(
        settings=settings,
        sessionmaker=sessionmaker,
        purge_rules=PURGE_RULES,
        analyze_tables=HOT_TABLES,
    )
