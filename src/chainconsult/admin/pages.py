"""Admin pages: find an account and change its plan, lift a login lockout or end its
sessions, and the audit log. The actions run the API's own handlers (admin/endpoints.py,
accounts/lifecycle_endpoints.py); the vetting queue is in applications/pages.py, the status
dashboard at /status."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from pydantic import StringConstraints, TypeAdapter, ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.lifecycle_endpoints import end_user_sessions
from chainconsult.accounts.schemas import PlanChangeRequest
from chainconsult.accounts.service import AccountService
from chainconsult.accounts.visit import AdminPosted, AdminVisit
from chainconsult.admin import endpoints
from chainconsult.admin.schemas import AuditFilters
from chainconsult.admin.service import AuditLog
from chainconsult.audit.trail import request_origin
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE
from chainconsult.models.accounts import Plan
from chainconsult.web.forms import FormState, invalid_input
from chainconsult.web.routing import page_router

router = page_router()

EmailQuery = Annotated[str | None, Query(max_length=320)]


@router.get("/admin/users")
async def users_page(visit: AdminVisit, email: EmailQuery = None) -> Response:
    account = None
    if email:
        account = await AccountService(visit.session).repository.by_email(email.strip())
    return await visit.render(
        "admin/users.html",
        email=email or "",
        account=account,
        searched=bool(email),
        plans=[plan.value for plan in Plan],
        notice=visit.request.query_params.get("notice"),
    )


def _back_to(email: str, notice: str) -> RedirectResponse:
    query = urlencode({"email": email, "notice": notice})
    return RedirectResponse(f"/admin/users?{query}", status_code=303)


@router.post("/admin/users/{account_id:uuid}/plan")
async def change_plan(account_id: uuid.UUID, request: Request, posted: AdminPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        body = PlanChangeRequest.model_validate(form.document(["plan"]))
    except ValidationError as exc:
        raise invalid_input(exc) from exc
    account = await endpoints.change_plan(
        account_id, body, visit.member, visit.session, request_origin(request)
    )
    return _back_to(account.email, "plan")


@router.post("/admin/users/{account_id:uuid}/unlock")
async def unlock(account_id: uuid.UUID, request: Request, posted: AdminPosted) -> Response:
    visit = posted.visit
    await endpoints.unlock_login(
        account_id, request, visit.member, visit.session, request_origin(request)
    )
    account = await AccountService(visit.session).get(account_id)
    return _back_to(account.email, "unlocked")


@router.post("/admin/users/{account_id:uuid}/sessions/end")
async def end_sessions(account_id: uuid.UUID, request: Request, posted: AdminPosted) -> Response:
    visit = posted.visit
    await end_user_sessions(account_id, visit.member, visit.session, request_origin(request))
    account = await AccountService(visit.session).get(account_id)
    return _back_to(account.email, "sessions-ended")


_AUDIT_FILTERS: dict[str, TypeAdapter[Any]] = {
    "action": TypeAdapter(Annotated[str, StringConstraints(max_length=60)]),
    "actor_id": TypeAdapter(uuid.UUID),
    "since": TypeAdapter(dt.date),
}


@router.get("/admin/audit-log")
async def audit_log_page(
    visit: AdminVisit, cursor: Annotated[str | None, Query(max_length=512)] = None
) -> Response:
    """Filters are read from the query string by hand: a GET form sends its blank fields as
    empty values, which mean "any" here."""
    params = visit.request.query_params
    form = FormState(values={name: params.get(name, "") for name in _AUDIT_FILTERS})
    found: dict[str, Any] = {}
    for name, adapter in _AUDIT_FILTERS.items():
        if raw := form.value(name).strip():
            try:
                found[name] = adapter.validate_python(raw)
            except ValidationError as exc:
                form.errors[name] = "; ".join(str(e["msg"]) for e in exc.errors())
    since = found.get("since")
    filters = AuditFilters(
        action=found.get("action"),
        actor_id=found.get("actor_id"),
        since=dt.datetime.combine(since, dt.time(), dt.UTC) if since else None,
    )
    page = await AuditLog(visit.session).search(filters, cursor, DEFAULT_PAGE_SIZE)
    next_url = None
    if page.next_cursor:
        next_url = "/admin/audit-log?" + urlencode({**form.values, "cursor": page.next_cursor})
    return await visit.render(
        "admin/audit_log.html",
        status_code=422 if form.failed else 200,
        page=page,
        form=form,
        next_url=next_url,
    )
