"""Housekeeping: the purge honours retention, ANALYZE runs, stalled jobs are re-queued, and
every schedule is registered in one place."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chainconsult.config import Settings
from chainconsult.infra.jobs import JobResources, defer, job_app
from chainconsult.infra.jobs.maintenance import (
    analyze_hot_tables,
    purge_expired_rows,
    recover_stalled_jobs,
)
from chainconsult.infra.jobs.worker import _install_schedules
from chainconsult.schedules import register_schedules
from tests.conftest import make_settings
from tests.infra.jobs.conftest import drain, jobs, query
from tests.infra.jobs.tasks import record


def _add_login(database_url: str, account: uuid.UUID, *, expires: str, revoked: str | None) -> str:
    login = uuid.uuid4()
    query(
        database_url,
        "INSERT INTO account_sessions (id, account_id, token_hash, expires_at, revoked_at)"
        " VALUES (%(id)s, %(account)s, %(hash)s, now() + %(expires)s::interval,"
        " now() + %(revoked)s::interval)",
        {
            "id": login,
            "account": account,
            "hash": uuid.uuid4().bytes * 2,
            "expires": expires,
            "revoked": revoked,
        },
    )
    return str(login)


async def test_the_purge_deletes_only_what_is_past_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    account = uuid.uuid4()
    query(
        database_url,
        "INSERT INTO accounts (id, email, password_hash, display_name, role, plan, is_active)"
        " VALUES (%(id)s, 'p@example.com', 'x', 'P', 'client', 'free', true)",
        {"id": account},
    )
    kept = {
        _add_login(database_url, account, expires="12 hours", revoked=None),
        _add_login(database_url, account, expires="-2 days", revoked=None),
        _add_login(database_url, account, expires="1 day", revoked="-1 day"),
    }
    _add_login(database_url, account, expires="-8 days", revoked=None)
    _add_login(database_url, account, expires="1 day", revoked="-9 days")
    query(
        database_url,
        "INSERT INTO job_failures (job_id, task_name, queue, attempt, will_retry, error,"
        " created_at) VALUES (1, 't', 'low', 1, false, 'old', now() - interval '15 days'),"
        " (2, 't', 'low', 1, false, 'recent', now() - interval '13 days')",
    )
    async with sessionmaker() as session, session.begin():
        finished = await defer(session, record, label="old news")
    await drain(job_resources)
    query(
        database_url,
        "UPDATE procrastinate_events SET at = at - interval '15 days' WHERE job_id = %(id)s",
        {"id": finished},
    )
    async with sessionmaker() as session, session.begin():
        purge = await defer(session, purge_expired_rows, timestamp=int(time.time()))

    await drain(job_resources)

    remaining = {row["id"] for row in query(database_url, "SELECT id::text FROM account_sessions")}
    assert remaining == kept
    errors = query(database_url, "SELECT error FROM job_failures")
    assert errors == [{"error": "recent"}]
    assert [row["id"] for row in jobs(database_url)] == [purge]
    assert query(database_url, "SELECT count(*) AS n FROM accounts") == [{"n": 1}]


async def test_nightly_analyze_refreshes_statistics_of_the_hot_tables(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    async with sessionmaker() as session, session.begin():
        await defer(session, analyze_hot_tables, timestamp=int(time.time()))

    await drain(job_resources)

    analyzed = query(
        database_url,
        "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
        " AND relname = ANY(%(names)s)",
        {"names": list(job_resources.analyze_tables)},
    )
    assert {row["relname"] for row in analyzed} == set(job_resources.analyze_tables)


async def test_recovery_requeues_the_jobs_of_a_silent_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_resources: JobResources,
    database_url: str,
) -> None:
    async with sessionmaker() as session, session.begin():
        stuck = await defer(session, record, label="stuck")
        alive = await defer(session, record, label="alive")
    # Two workers took a job each; one stopped sending heartbeats a minute ago.
    dead, living = (
        row["id"]
        for row in query(
            database_url,
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES"
            " (now() - interval '1 minute'), (now()) RETURNING id",
        )
    )
    for job, worker in ((stuck, dead), (alive, living)):
        query(
            database_url,
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %(w)s WHERE id = %(j)s",
            {"w": worker, "j": job},
        )
    async with sessionmaker() as session, session.begin():
        await defer(session, recover_stalled_jobs, timestamp=int(time.time()))

    await drain(job_resources, queues=["critical"])

    statuses = {row["id"]: (row["status"], row["attempts"]) for row in jobs(database_url)}
    assert statuses[stuck] == ("todo", 1)
    assert statuses[alive] == ("doing", 0)


def test_schedules_are_registered_in_one_place(database_url: str, tmp_path: Path) -> None:
    settings: Settings = make_settings(database_url, tmp_path, JOB_RECOVERY_INTERVAL_SECONDS="5")
    _install_schedules(settings, register_schedules)

    crons = {
        task_name: periodic.cron
        for (task_name, _), periodic in job_app.periodic_registry.periodic_tasks.items()
    }
    assert crons == {
        "maintenance.recover_stalled_jobs": "* * * * * */5",
        "maintenance.purge_expired_rows": "17 3 * * *",
        "maintenance.analyze_hot_tables": "47 3 * * *",
        "accounts.purge_login_counters": "23 * * * *",
        "backup.scheduled_backup": "37 2 * * *",
    }
    _install_schedules(settings, None)
    assert job_app.periodic_registry.periodic_tasks == {}
