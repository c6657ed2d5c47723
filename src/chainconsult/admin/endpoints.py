from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from chainconsult.accounts.auth import AdminAccount
from chainconsult.accounts.mfa import mfa_enabled
from chainconsult.accounts.schemas import AccountResponse, PlanChangeRequest
from chainconsult.accounts.service import AccountService
from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.admin.schemas import (
    AuditEntryResponse,
    AuditFilters,
    JobFailureOut,
    JobsOverviewResponse,
    QueueStats,
)
from chainconsult.admin.service import AuditLog
from chainconsult.audit.trail import AuditTrail, Origin
from chainconsult.config import settings_of
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.jobs import operations as jobs_operations
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from chainconsult.infra.request_models import FromIsoText

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/users/{account_id}/plan", response_model=AccountResponse)
async def change_plan(
    account_id: uuid.UUID,
    body: PlanChangeRequest,
    admin: AdminAccount,
    session: DbSession,
    origin: Origin,
) -> AccountResponse:
    """Move an account to another plan; limits and quotas follow on its next request."""
    service = AccountService(session)
    previous = (await service.get(account_id)).plan
    account = await service.change_plan(account_id=account_id, plan=body.plan)
    await AuditTrail(session).record(
        actor_id=admin.account_id,
        action="plan.changed",
        resource_type="account",
        resource_id=account.id,
        origin=origin,
        details={"from": previous, "to": body.plan.value},
    )
    answer = AccountResponse.model_validate(account)
    return answer.model_copy(update={"mfa_enabled": await mfa_enabled(session, account.id)})


@router.get("/audit-log", response_model=Page[AuditEntryResponse])
async def audit_log(
    admin: AdminAccount,
    session: DbSession,
    actor_id: Annotated[uuid.UUID | None, Query()] = None,
    action: Annotated[
        str | None, Query(max_length=60, description="e.g. auth.login_failed, plan.changed")
    ] = None,
    resource_type: Annotated[str | None, Query(max_length=40)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        FromIsoText[dt.datetime] | None, Query(description="Inclusive, ISO 8601.")
    ] = None,
    until: Annotated[
        FromIsoText[dt.datetime] | None, Query(description="Exclusive, ISO 8601.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[AuditEntryResponse]:
    """The audit log, newest first: auth events, vetting decisions, plan changes,
    cancellations and erasures, with actor, IP and user agent."""
    filters = AuditFilters(
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        since=since,
        until=until,
    )
    return await AuditLog(session).search(filters, cursor, limit)


@router.post("/users/{account_id}/unlock", status_code=status.HTTP_204_NO_CONTENT)
async def unlock_login(
    account_id: uuid.UUID,
    request: Request,
    admin: AdminAccount,
    session: DbSession,
    origin: Origin,
) -> None:
    """Lift the failed-login delay or lockout of an account at once (it otherwise ends with
    its window). The next wrong password starts a new count."""
    account = await AccountService(session).get(account_id)
    throttle = LoginThrottle(settings_of(request).login_throttle)
    await throttle.clear_account(session, email=account.email)
    await AuditTrail(session).record(
        actor_id=admin.account_id,
        action="auth.unlocked",
        resource_type="account",
        resource_id=account.id,
        origin=origin,
    )


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
