"""The account lifecycle pages: forgot and reset password, verify an address, and the security
page (sessions, password change, verification status). Each form runs the API's own handler
(accounts/lifecycle_endpoints.py) as a function: same rules, throttles and audit entries.

The pages a mailed link opens only show a form; the token is spent by the form's POST, so a
mail scanner that fetches links cannot use it up."""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from chainconsult.accounts import lifecycle_endpoints as endpoints
from chainconsult.accounts.auth import CSRF_COOKIE, SESSION_COOKIE
from chainconsult.accounts.lifecycle_schemas import (
    PasswordChangeRequest,
    ResetConfirmRequest,
    ResetRequest,
    VerifyEmailRequest,
)
from chainconsult.accounts.pages import see_other
from chainconsult.accounts.security_page import render_security
from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit, Posted, Visit
from chainconsult.audit.trail import request_origin
from chainconsult.errors import ChainconsultError
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()

TokenQuery = Annotated[str, Query(max_length=200)]
Notice = Annotated[str | None, Query(max_length=40)]


M = TypeVar("M", bound=BaseModel)


def _parsed(model: type[M], form: FormState, names: list[str]) -> M | None:
    """The form as the API's request model, or None with the errors put on ``form``."""
    try:
        return model.model_validate(form.document(names))
    except ValidationError as exc:
        form.refuse(exc)
        return None


async def _refused(
    visit: PageVisit, template: str, form: FormState, exc: ChainconsultError, **context: object
) -> Response:
    await visit.undo()
    form.general.append(exc.detail)
    return await visit.render(
        template, status_code=exc.status_code, headers=exc.headers, form=form, **context
    )


@router.get("/forgot-password")
async def forgot_password_page(visit: Visit) -> Response:
    return await visit.render("accounts/forgot_password.html", form=FormState(), sent=False)


@router.post("/forgot-password")
async def forgot_password(request: Request, posted: Posted) -> Response:
    visit, form = posted.visit, FormState.posted(posted.form)
    template = "accounts/forgot_password.html"
    body = _parsed(ResetRequest, form, ["email"])
    if body is None:
        return await visit.render(template, status_code=422, form=form, sent=False)
    try:
        await endpoints.request_password_reset(
            body, request, visit.session, request_origin(request)
        )
    except ChainconsultError as exc:
        return await _refused(visit, template, form, exc, sent=False)
    return await visit.render(template, status_code=202, form=form, sent=True)


@router.get("/reset-password")
async def reset_password_page(visit: Visit, token: TokenQuery = "") -> Response:
    form = FormState(values={"token": token})
    return await visit.render("accounts/reset_password.html", form=form, done=False)


@router.post("/reset-password")
async def reset_password(request: Request, posted: Posted) -> Response:
    visit, form = posted.visit, FormState.posted(posted.form)
    template = "accounts/reset_password.html"
    body = _parsed(ResetConfirmRequest, form, ["token", "new_password"])
    if body is None:
        return await visit.render(template, status_code=422, form=form, done=False)
    try:
        await endpoints.confirm_password_reset(
            body, request, visit.session, request_origin(request)
        )
    except ChainconsultError as exc:
        return await _refused(visit, template, form, exc, done=False)
    response = await visit.render(template, form=FormState(), done=True)
    # Every session ended, this browser's too.
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/verify-email")
async def verify_email_page(visit: Visit, token: TokenQuery = "") -> Response:
    form = FormState(values={"token": token})
    return await visit.render("accounts/verify_email.html", form=form, done=False)


@router.post("/verify-email")
async def verify_email(request: Request, posted: Posted) -> Response:
    visit, form = posted.visit, FormState.posted(posted.form)
    template = "accounts/verify_email.html"
    body = _parsed(VerifyEmailRequest, form, ["token"])
    if body is None:
        return await visit.render(template, status_code=422, form=form, done=False)
    try:
        await endpoints.verify_email(body, request, visit.session, request_origin(request))
    except ChainconsultError as exc:
        return await _refused(visit, template, form, exc, done=False)
    return await visit.render(template, form=form, done=True)


@router.get("/account/security")
async def security_page(visit: MemberVisit, notice: Notice = None) -> Response:
    return await render_security(visit, notice=notice)


@router.post("/account/security/password")
async def change_password(request: Request, posted: MemberPosted) -> Response:
    visit, form = posted.visit, FormState.posted(posted.form)
    body = _parsed(PasswordChangeRequest, form, ["current_password", "new_password"])
    if body is None:
        return await render_security(visit, password_form=form, status_code=422)
    try:
        await endpoints.change_password(
            body, visit.member, request, visit.session, request_origin(request)
        )
    except ChainconsultError as exc:
        await visit.undo()
        form.errors["current_password"] = exc.detail
        return await render_security(
            visit, password_form=form, status_code=exc.status_code, headers=exc.headers
        )
    return see_other("/account/security?notice=password-changed")


@router.post("/account/sessions/end-others")
async def end_other_sessions(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    await endpoints.end_other_sessions(visit.member, visit.session, request_origin(request))
    return see_other("/account/security?notice=others-ended")


@router.post("/account/sessions/{session_id:uuid}/end")
async def end_session(session_id: uuid.UUID, request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    await endpoints.end_session(session_id, visit.member, visit.session, request_origin(request))
    if session_id != visit.member.session_id:
        return see_other("/account/security?notice=session-ended")
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/account/verify-email/resend")
async def resend_verification(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    await endpoints.resend_verification(visit.member, request, visit.session)
    return see_other("/account/security?notice=verification-sent")
