"""The account pages: register, log in, log out, the account page. Registration, login and
logout run the API's own handlers (accounts/endpoints.py) as functions, so a page login is
throttled, audited and given the same cookies as an API login: one home for each rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts import endpoints
from chainconsult.accounts.identity_schemas import MfaRequiredResponse
from chainconsult.accounts.schemas import LoginRequest, RegisterRequest
from chainconsult.accounts.visit import MemberVisit, PageVisit, Posted, Visit
from chainconsult.audit.trail import request_origin
from chainconsult.errors import ChainconsultError
from chainconsult.models.accounts import Role
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()

NextPath = Annotated[str | None, Query(max_length=2000)]


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after a login: a path on this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def refused(form: FormState, exc: ChainconsultError) -> FormState:
    """A service's refusal on a form: a conflict that names its field goes under that field."""
    field = exc.extensions.get("field")
    if isinstance(field, str) and field:
        form.errors[field] = exc.detail
        return form
    return form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))


@router.get("/login")
async def login_page(visit: Visit, next: NextPath = None) -> Response:
    if visit.principal is not None:
        return see_other(safe_next(next))
    return await visit.render("accounts/login.html", form=FormState(), next=safe_next(next, ""))


@router.post("/login")
async def log_in(request: Request, posted: Posted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    target = safe_next(form.value("next"))
    try:
        body = LoginRequest.model_validate(form.document(["email", "password"]))
    except ValidationError as exc:
        return await _login_again(visit, form.refuse(exc), 422)
    response = see_other(target)
    try:
        answer = await endpoints.login(body, request, response, visit.session)
    except ChainconsultError as exc:
        await visit.undo()
        form.general.append(exc.detail)
        return await _login_again(visit, form, exc.status_code, exc.headers)
    if isinstance(answer, MfaRequiredResponse):
        # Two-factor login: the code form (accounts/identity_pages.py posts it).
        return await visit.render(
            "accounts/login_mfa.html", form=FormState(), mfa_token=answer.mfa_token, next=target
        )
    return response


async def _login_again(
    visit: PageVisit, form: FormState, status: int, headers: dict[str, str] | None = None
) -> Response:
    return await visit.render(
        "accounts/login.html",
        status_code=status,
        headers=headers,
        form=form,
        next=safe_next(form.value("next"), ""),
    )


@router.get("/register")
async def register_page(visit: Visit) -> Response:
    if visit.principal is not None:
        return see_other("/account")
    return await visit.render("accounts/register.html", form=FormState(values={"role": "client"}))


@router.post("/register")
async def register(request: Request, posted: Posted) -> Response:
    """Create the account and log it in: a client goes on to post a project, an expert to
    apply."""
    visit = posted.visit
    form = FormState.posted(posted.form)
    names = ["email", "password", "display_name", "role"]
    try:
        body = RegisterRequest.model_validate(form.document(names))
    except ValidationError as exc:
        return await visit.render("accounts/register.html", status_code=422, form=form.refuse(exc))
    response = see_other("/experts/apply" if body.role == "expert" else "/projects/new")
    try:
        await endpoints.register(body, request, visit.session, request_origin(request))
    except ChainconsultError as exc:
        await visit.undo()
        return await visit.render(
            "accounts/register.html",
            status_code=exc.status_code,
            headers=exc.headers,
            form=refused(form, exc),
        )
    login = LoginRequest(email=str(body.email), password=body.password)
    try:
        await endpoints.login(login, request, response, visit.session)
    except ChainconsultError as exc:
        # The account is made (the login throttle's count commits it): only the login waits.
        made = FormState(values={"email": str(body.email)})
        made.general.append(f"Your account is created, but logging in must wait: {exc.detail}")
        return await _login_again(visit, made, exc.status_code, exc.headers)
    return response


@router.get("/logout")
async def logout_page(visit: Visit) -> Response:
    """Logging out changes something, so it takes a form (a POST), never a link."""
    if visit.principal is None:
        return see_other("/")
    return await visit.render("accounts/logout.html")


@router.post("/logout")
async def log_out(request: Request, posted: Posted) -> Response:
    visit = posted.visit
    response = see_other("/")
    if visit.principal is not None:
        await endpoints.logout(visit.principal, response, visit.session, request_origin(request))
    return response


@router.get("/account")
async def account_page(visit: MemberVisit) -> Response:
    return await render_account(visit)


async def render_account(
    visit: PageVisit, *, erase_form: FormState | None = None, status_code: int = 200
) -> Response:
    """The account page; ``erase_form`` with what a refused deletion said (privacy/pages.py)."""
    principal = visit.member
    application = await visit.sources.expert_application(visit.session, principal.account_id)
    return await visit.render(
        "accounts/account.html",
        status_code=status_code,
        account=principal,
        is_expert=principal.role is Role.expert,
        application=application,
        erase_form=erase_form or FormState(),
    )
