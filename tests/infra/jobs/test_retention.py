"""Retention of the marketplace's data through the scheduled jobs: read notifications and audit
rows past NOTIFICATION_RETENTION_DAYS / AUDIT_RETENTION_DAYS go in the nightly purge, and the
hourly job drops failed-login counters whose window has ended."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.accounts.jobs import purge_login_counters
from chainconsult.infra.jobs import defer
from chainconsult.infra.jobs.maintenance import purge_expired_rows
from chainconsult.schedules import worker_resources
from tests.conftest import make_settings
from tests.infra.jobs.conftest import FAST_JOBS, drain, jobs, query
from tests.notify import add_account


def _notification(database_url: str, account: uuid.UUID, *, age: str, read: str | None) -> str:
    note = uuid.uuid4()
    query(
        database_url,
        "INSERT INTO notifications (id, recipient_id, kind, payload, created_at, read_at)"
        " VALUES (%(id)s, %(account)s, 'project_completed', '{}', now() - %(age)s::interval,"
        " now() - %(read)s::interval)",
        {"id": note, "account": account, "age": age, "read": read},
    )
    return str(note)


def _audit(database_url: str, *, age: str) -> str:
    entry = uuid.uuid4()
    query(
        database_url,
        "INSERT INTO audit_log (id, occurred_at, action, resource_type)"
        " VALUES (%(id)s, now() - %(age)s::interval, 'auth.login', 'account')",
        {"id": entry, "age": age},
    )
    return str(entry)


async def test_the_nightly_purge_drops_old_read_notifications_and_audit_rows_past_retention(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        NOTIFICATION_RETENTION_DAYS="30",
        AUDIT_RETENTION_DAYS="400",
        **FAST_JOBS,
    )
    account = await add_account(sessionmaker, email="reader@example.com")
    kept_notes = {
        _notification(database_url, account, age="40 days", read=None),  # never read
        _notification(database_url, account, age="40 days", read="29 days"),
        _notification(database_url, account, age="1 day", read="1 hour"),
    }
    _notification(database_url, account, age="40 days", read="31 days")
    kept_audit = {_audit(database_url, age="399 days"), _audit(database_url, age="1 minute")}
    _audit(database_url, age="401 days")
    async with sessionmaker() as session, session.begin():
        await defer(session, purge_expired_rows, timestamp=int(time.time()))

    await drain(worker_resources(settings, sessionmaker))

    notes = query(database_url, "SELECT id::text FROM notifications")
    assert {row["id"] for row in notes} == kept_notes
    audit = query(database_url, "SELECT id::text FROM audit_log")
    assert {row["id"] for row in audit} == kept_audit
    [purge] = jobs(database_url)
    assert purge["status"] == "succeeded"


async def test_the_hourly_job_drops_login_counters_whose_window_has_ended(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url, tmp_path, REDIS_URL=None, LOGIN_THROTTLE_WINDOW="3600", **FAST_JOBS
    )
    query(
        database_url,
        "INSERT INTO login_failure_counters (key, failures, window_started_at, last_failure_at)"
        " VALUES ('email:stale', 7, now() - interval '61 minutes', now() - interval '1 hour'),"
        " ('ip:stale', 30, now() - interval '2 days', now() - interval '2 days'),"
        " ('email:current', 3, now() - interval '59 minutes', now())",
    )
    async with sessionmaker() as session, session.begin():
        await defer(session, purge_login_counters, timestamp=int(time.time()))

    await drain(worker_resources(settings, sessionmaker))

    assert query(database_url, "SELECT key FROM login_failure_counters") == [
        {"key": "email:current"}
    ]
    [purge] = jobs(database_url)
    assert (purge["task_name"], purge["status"]) == ("accounts.purge_login_counters", "succeeded")
