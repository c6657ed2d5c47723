from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from chainconsult.accounts.auth import AdminAccount
from chainconsult.accounts.schemas import AccountResponse, PlanChangeRequest
from chainconsult.accounts.service import AccountService
from chainconsult.admin.schemas import JobFailureOut, JobsOverviewResponse, QueueStats
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.jobs import operations as jobs_operations

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/users/{account_id}/plan", response_model=AccountResponse)
async def change_plan(
    account_id: uuid.UUID, body: PlanChangeRequest, admin: AdminAccount, session: DbSession
) -> AccountResponse:
    """Move an account to another plan; limits and quotas follow on its next request."""
    account = await AccountService(session).change_plan(account_id=account_id, plan=body.plan)
    return AccountResponse.model_validate(account)


@router.get("/jobs", response_model=JobsOverviewResponse)
async def jobs_overview(
    admin: AdminAccount,
    session: DbSession,
    failures: Annotated[int, Query(ge=0, le=200, description="Recent failures to list.")] = 20,
) -> JobsOverviewResponse:
    """Background jobs: counts by queue and status, the age of the oldest waiting job in each
    queue, and the most recent failed attempts with their error text."""
    found = await jobs_operations.overview(session, failures=failures)
    return JobsOverviewResponse(
        queues=[
            QueueStats(
                name=queue.name,
                counts=queue.counts,
                oldest_waiting_seconds=queue.oldest_waiting_seconds,
            )
            for queue in found.queues
        ],
        recent_failures=[
            JobFailureOut(
                job_id=note.job_id,
                task=note.task_name,
                queue=note.queue,
                attempt=note.attempt,
                will_retry=note.will_retry,
                error=note.error,
                failed_at=note.failed_at,
            )
            for note in found.recent_failures
        ],
    )
