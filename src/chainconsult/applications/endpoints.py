from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from chainconsult.accounts.auth import AdminAccount, CurrentAccount
from chainconsult.accounts.verification import UNVERIFIED_RESPONSE
from chainconsult.applications.schemas import (
    ApplicationRequest,
    ApplicationResponse,
    DecisionRequest,
)
from chainconsult.applications.service import ApplicationService
from chainconsult.audit.trail import Origin
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.db.transaction import unit_of_work
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from chainconsult.models.experts import ApplicationStatus

router = APIRouter(prefix="/expert-applications", tags=["expert applications"])
admin_router = APIRouter(prefix="/admin/expert-applications", tags=["admin"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApplicationResponse,
    responses=UNVERIFIED_RESPONSE,
)
async def apply(
    body: ApplicationRequest, principal: CurrentAccount, session: DbSession
) -> ApplicationResponse:
    """Apply to become an expert (409 while an earlier application waits for a decision).
    Applying again after a rejection, or as an approved expert to change your public profile,
    adds a new revision; the live profile changes only when that revision is approved."""
    application = await unit_of_work(
        session, lambda s: ApplicationService(s).submit(principal=principal, body=body)
    )
    return (await ApplicationService(session).responses([application]))[0]


@router.get("/me", response_model=Page[ApplicationResponse])
async def my_applications(
    principal: CurrentAccount, session: DbSession
) -> Page[ApplicationResponse]:
    """Every revision of your application, newest first, with its status and decision note."""
    return await ApplicationService(session).mine(principal.account_id)


@admin_router.get("", response_model=Page[ApplicationResponse])
async def vetting_queue(
    admin: AdminAccount,
    session: DbSession,
    status: Annotated[ApplicationStatus | None, Query(description="Only this status.")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[ApplicationResponse]:
    """Applications, oldest first (the vetting queue); filter by status."""
    return await ApplicationService(session).queue(status=status, cursor=cursor, limit=limit)


@admin_router.post("/{application_id}/review", response_model=ApplicationResponse)
async def start_review(
    application_id: uuid.UUID, admin: AdminAccount, session: DbSession, origin: Origin
) -> ApplicationResponse:
    """Move a submitted application to under_review, so other admins see it is taken."""
    application = await unit_of_work(
        session,
        lambda s: ApplicationService(s).start_review(
            application_id=application_id, admin=admin, origin=origin
        ),
    )
    return ApplicationResponse.model_validate(application)


@admin_router.post("/{application_id}/decision", response_model=ApplicationResponse)
async def decide(
    application_id: uuid.UUID,
    body: DecisionRequest,
    admin: AdminAccount,
    session: DbSession,
    origin: Origin,
) -> ApplicationResponse:
    """Approve or reject with a note. Approval publishes (or refreshes) the expert's profile
    and grants the expert role; the applicant is notified either way. 409 once decided."""
    application = await unit_of_work(
        session,
        lambda s: ApplicationService(s).decide(
            application_id=application_id, admin=admin, body=body, origin=origin
        ),
    )
    return ApplicationResponse.model_validate(application)
