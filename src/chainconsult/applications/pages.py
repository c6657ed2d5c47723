"""Applying as an expert (with the application's status), and the admins' vetting queue: the
same service and request schemas as `/api/v2/expert-applications`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import (
    AdminPosted,
    AdminVisit,
    MemberPosted,
    MemberVisit,
    PageVisit,
)
from chainconsult.applications.schemas import ApplicationRequest, DecisionRequest
from chainconsult.applications.service import ApplicationService
from chainconsult.audit.trail import request_origin
from chainconsult.errors import ChainconsultError
from chainconsult.experts.pages import VOCABULARY
from chainconsult.infra.db.transaction import unit_of_work
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE
from chainconsult.models.experts import ApplicationStatus
from chainconsult.web.forms import FormState, invalid_input
from chainconsult.web.routing import page_router

router = page_router()
admin_router = page_router()
"""The vetting queue's pages, under /admin (registered with the other admin routes:
admin/routers.py)."""

_FIELDS = [
    "headline",
    "bio",
    "skills",
    "chains",
    "hourly_rate.amount",
    "hourly_rate.currency",
    "years_experience",
    "portfolio_links",
    "wallet_address",
    "wallet_chain",
]


async def _apply_page(
    visit: PageVisit, form: FormState, *, status_code: int = 200, notice: str | None = None
) -> Response:
    applications = await ApplicationService(visit.session).mine(visit.member.account_id)
    latest = applications.data[0] if applications.data else None
    waiting = latest is not None and latest.status in (
        ApplicationStatus.submitted,
        ApplicationStatus.under_review,
    )
    return await visit.render(
        "applications/apply.html",
        status_code=status_code,
        form=form,
        applications=applications.data,
        waiting=waiting,
        notice=notice,
        **VOCABULARY,
    )


@router.get("/experts/apply")
async def apply_page(visit: MemberVisit) -> Response:
    form = FormState(values={"hourly_rate.currency": "USD"})
    return await _apply_page(visit, form, notice=visit.request.query_params.get("notice"))


@router.post("/experts/apply")
async def apply(posted: MemberPosted) -> Response:
    visit = posted.visit
    principal = visit.member
    form = FormState.posted(posted.form, lists=("skills", "chains"))
    document = form.document(
        _FIELDS,
        lines=("portfolio_links",),
        integers=("years_experience",),
        optional=("wallet_address", "wallet_chain"),
    )
    try:
        body = ApplicationRequest.model_validate(document)
        await unit_of_work(
            visit.session,
            lambda s: ApplicationService(s).submit(principal=principal, body=body),
        )
    except ValidationError as exc:
        return await _apply_page(visit, form.refuse(exc), status_code=422)
    except ChainconsultError as exc:
        await visit.undo()
        form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))
        return await _apply_page(visit, form, status_code=exc.status_code)
    return RedirectResponse("/experts/apply?notice=submitted", status_code=303)


StatusFilter = Annotated[ApplicationStatus | None, Query()]


@admin_router.get("/admin/applications")
async def vetting_queue(
    visit: AdminVisit,
    status: StatusFilter = ApplicationStatus.submitted,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    page = await ApplicationService(visit.session).queue(
        status=status, cursor=cursor, limit=DEFAULT_PAGE_SIZE
    )
    return await visit.render(
        "applications/queue.html",
        page=page,
        status=status,
        statuses=[s.value for s in ApplicationStatus],
        cursor=cursor,
        notice=visit.request.query_params.get("notice"),
    )


@admin_router.post("/admin/applications/{application_id:uuid}/decision")
async def decide(application_id: uuid.UUID, request: Request, posted: AdminPosted) -> Response:
    visit = posted.visit
    admin = visit.member
    form = FormState.posted(posted.form)
    try:
        body = DecisionRequest.model_validate(form.document(["decision", "note"]))
        await unit_of_work(
            visit.session,
            lambda s: ApplicationService(s).decide(
                application_id=application_id,
                admin=admin,
                body=body,
                origin=request_origin(request),
            ),
        )
    except ValidationError as exc:
        raise invalid_input(exc) from exc
    return RedirectResponse(f"/admin/applications?notice={body.decision}d", status_code=303)
