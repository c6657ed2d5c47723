"""Every job the workers run and every periodic schedule, registered in one place.

Importing this module imports each domain's ``jobs.py`` (which registers its tasks on the
App); ``register_schedules`` sets the periodic runs, ``worker_resources`` what tasks may use.
The nightly purge covers one kind of data per ``PurgeRule``."""

from __future__ import annotations

from procrastinate import App
from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import chainconsult.accounts.lifecycle_jobs
import chainconsult.conversations.jobs
import chainconsult.notifications.jobs  # noqa: F401  (registers its tasks)
from chainconsult.accounts.jobs import purge_login_counters
from chainconsult.config import Settings
from chainconsult.escrow.jobs import FOLLOW_INTERVAL_SECONDS, follow_escrow, reconcile_escrow
from chainconsult.infra.backup.jobs import scheduled_backup
from chainconsult.infra.jobs import JobResources
from chainconsult.infra.jobs.maintenance import (
    PurgeRule,
    analyze_hot_tables,
    days,
    purge_expired_rows,
    recover_stalled_jobs,
)
from chainconsult.models import (
    AccountSession,
    AccountToken,
    AuditEntry,
    EmailDelivery,
    JobFailure,
    Notification,
)

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
        "expired_account_tokens",
        AccountToken.__table__,  # type: ignore[arg-type]
        lambda now, keep: AccountToken.expires_at < now - days(keep.session_days),
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
    # Unread ones stay: their recipient has not seen them yet.
    PurgeRule(
        "read_notifications",
        Notification.__table__,  # type: ignore[arg-type]
        lambda now, keep: Notification.read_at < now - days(keep.notification_days),
    ),
    PurgeRule(
        "audit_log",
        AuditEntry.__table__,  # type: ignore[arg-type]
        lambda now, keep: AuditEntry.occurred_at < now - days(keep.audit_days),
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
    # Hourly: a counter is useless once its window (LOGIN_THROTTLE_WINDOW, 1 h) has ended.
    app.periodic(cron="23 * * * *")(purge_login_counters)
    # BACKUP_SCHEDULE, daily by default: a dump, then pruning by BACKUP_RETENTION.
    app.periodic(cron=settings.backup.schedule)(scheduled_backup)
    # The escrow watcher, only where escrow is set up (ESCROW_RPC_URL and the contract).
    if settings.escrow.configured:
        app.periodic(cron=every(FOLLOW_INTERVAL_SECONDS))(follow_escrow)
        # Under the watcher's lock, so it compares at a cursor no step is moving.
        app.periodic(cron="*/10 * * * *")(reconcile_escrow)


def worker_resources(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> JobResources[Settings]:
    return JobResources(
        settings=settings,
        sessionmaker=sessionmaker,
        purge_rules=PURGE_RULES,
        analyze_tables=HOT_TABLES,
    )
