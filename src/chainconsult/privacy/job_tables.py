"""Personal data in the job queue's tables: which jobs are about an account, the error texts
of their failed attempts (a refused recipient's address, say), the same errors in the stored
log lines (LOG_TO_DATABASE), and the record of every email sent to the account.

Job arguments never hold a name or an address, only ids; a job is about an account when one
of the arguments below names it. A task taking another argument that points at a person must
add it here (tests/privacy checks every registered task's arguments).
``procrastinate_workers`` and ``procrastinate_periodic_defers`` hold nothing about anyone."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.privacy.registry import PersonalTable, delete_rows

JOB_ARGUMENTS_NAMING_AN_ACCOUNT: dict[str, str] = {
    "account_id": "SELECT CAST(:id AS text)",
    "notification_id": (
        "SELECT CAST(n.id AS text) FROM notifications n WHERE n.recipient_id = :id"
    ),
    # A mailed link (password reset, email verification) of the account.
    "token_id": "SELECT CAST(t.id AS text) FROM account_tokens t WHERE t.account_id = :id",
    # An escrow milestone is about its project's client and expert.
    "milestone_id": (
        "SELECT CAST(m.id AS text) FROM milestones m JOIN projects p ON p.id = m.project_id "
        "WHERE p.client_id = :id OR p.expert_id = :id"
    ),
}
"""Argument name -> SQL selecting the values that make a job about account ``:id``. The
arguments are not indexed: an erasure or export scans the job table (kept for
JOB_RETENTION_DAYS only), which is cheaper overall than one more index entry on every job
every worker inserts and deletes."""


def jobs_about(alias: str) -> str:
    """SQL condition: the procrastinate_jobs row ``alias`` is about account ``:id``."""
    return (
        "("
        + " OR ".join(
            f"{alias}.args->>'{name}' IN ({values})"
            for name, values in JOB_ARGUMENTS_NAMING_AN_ACCOUNT.items()
        )
        + ")"
    )


# Built from the constants above only, never from input.
_OF_JOBS_ABOUT = f"t.job_id IN (SELECT j.id FROM procrastinate_jobs j WHERE {jobs_about('j')})"  # noqa: S608


# A stored warning or error line about one of the jobs, or one quoting the address (a job's
# traceback, a refused recipient) as a whole: john@example.com does not quote n@example.com.
# Read before the account row is anonymised. Every character of the address but letters and
# digits is escaped, so it matches only itself.
_QUOTED_ADDRESS = (
    r"(SELECT '(^|[^\w.+-])' || regexp_replace(lower(a.email), '(\W)', '\\\1', 'g')"
    r" || '($|[^\w.-]|\.($|\W))' FROM accounts a WHERE a.id = :id)"
)
_LOG_LINES_ABOUT = (
    f"(t.context->>'job_id') IN (SELECT CAST(j.id AS text) FROM procrastinate_jobs j "  # noqa: S608
    f"WHERE {jobs_about('j')}) OR lower(t.event || ' ' || t.context::text) ~ {_QUOTED_ADDRESS}"
)


async def _erase_log_lines(session: AsyncSession, account_id: uuid.UUID) -> None:
    await session.execute(
        text(f"DELETE FROM log_entries t WHERE {_LOG_LINES_ABOUT}"),  # noqa: S608
        {"id": account_id},
    )


async def _erase_job_failures(session: AsyncSession, account_id: uuid.UUID) -> None:
    await session.execute(
        text(f"DELETE FROM job_failures t WHERE {_OF_JOBS_ABOUT}"),  # noqa: S608
        {"id": account_id},
    )


async def _erase_job_events(session: AsyncSession, account_id: uuid.UUID) -> None:
    await session.execute(
        text(f"DELETE FROM procrastinate_events t WHERE {_OF_JOBS_ABOUT}"),  # noqa: S608
        {"id": account_id},
    )


async def _erase_jobs(session: AsyncSession, account_id: uuid.UUID) -> None:
    """Waiting, finished and failed jobs go; a running one stays for its worker to finish
    (its arguments are ids only, and it sends nothing once the account is erased)."""
    await session.execute(
        text(
            f"DELETE FROM procrastinate_jobs t WHERE t.status <> 'doing' AND {jobs_about('t')}"  # noqa: S608
        ),
        {"id": account_id},
    )


JOB_TABLES = [
    # Before the jobs themselves and before the notifications: both lead to the rows here.
    PersonalTable("log_entries", (), _erase_log_lines, also_about=_LOG_LINES_ABOUT),
    PersonalTable("job_failures", (), _erase_job_failures, also_about=_OF_JOBS_ABOUT),
    PersonalTable("procrastinate_events", (), _erase_job_events, also_about=_OF_JOBS_ABOUT),
    PersonalTable("procrastinate_jobs", (), _erase_jobs, also_about=jobs_about("t")),
    PersonalTable(
        "email_deliveries", ("account_id",), delete_rows("email_deliveries", "account_id")
    ),
]
"""Registered before the marketplace's tables: the notifications they are found through must
still exist when they are erased."""
