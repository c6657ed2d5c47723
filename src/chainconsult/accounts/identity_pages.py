"""The pages of two-factor login and wallets: the code step of /login, the two-factor part of
/account/security (its template is accounts/_two_factor.html, which the security page
includes) and /account/wallets. Each form runs the API's own handler as a function
(accounts/mfa_endpoints.py, accounts/siwe_endpoints.py): one home for every rule."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.responses import Response

from chainconsult.accounts import mfa_endpoints, siwe_endpoints
from chainconsult.accounts.identity_schemas import (
    MfaLoginRequest,
    SiweRequest,
    TotpConfirmRequest,
    TotpDisableRequest,
)
from chainconsult.accounts.mfa import TotpSetup
from chainconsult.accounts.pages import safe_next, see_other
from chainconsult.accounts.security_page import render_security
from chainconsult.accounts.siwe import NO_RULES, SiweVerifier
from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit, Posted
from chainconsult.accounts.wallets import WalletService
from chainconsult.audit.trail import request_origin
from chainconsult.config import settings_of
from chainconsult.errors import ChainconsultError
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()


def _refused(form: FormState, exc: ValidationError | ChainconsultError) -> int:
    """Put a refusal on the form (beside its field when it names one); the page's status."""
    if isinstance(exc, ValidationError):
        form.refuse(exc)
        return 422
    form.general.append(exc.detail)
    return exc.status_code


@router.post("/login/mfa")
async def log_in_with_code(request: Request, posted: Posted) -> Response:
    """The second step of a page login: the code form /login shows for a 2FA account."""
    visit = posted.visit
    form = FormState.posted(posted.form)
    target = safe_next(form.value("next"))
    names = ["mfa_token", "code", "recovery_code"]
    response = see_other(target)
    try:
        body = MfaLoginRequest.model_validate(
            form.document(names, optional=["code", "recovery_code"])
        )
        await mfa_endpoints.log_in_second_step(body, request, response, visit.session)
    except (ValidationError, ChainconsultError) as exc:
        await visit.undo()
        if isinstance(exc, ValidationError):
            form.general.append("Enter the 6-digit code, or one recovery code.")
            status = 422
        elif exc.extensions.get("reason") == "mfa-token":
            # Nothing left to enter a code for: back to the password.
            return await visit.render(
                "accounts/login.html",
                status_code=exc.status_code,
                form=FormState(general=[exc.detail]),
                next=safe_next(target, ""),
            )
        else:
            form.general.append(exc.detail)
            status = exc.status_code
        return await code_step_page(visit, form.value("mfa_token"), target, form, status)
    return response


async def code_step_page(
    visit: PageVisit, mfa_token: str, target: str, form: FormState | None = None, status: int = 200
) -> Response:
    """The code form, after a right password (accounts/pages.py) or a wrong code."""
    return await visit.render(
        "accounts/login_mfa.html",
        status_code=status,
        form=form or FormState(),
        mfa_token=mfa_token,
        next=target,
    )


async def _security(visit: PageVisit, status: int = 200, **two_factor: Any) -> Response:
    return await render_security(visit, status_code=status, two_factor=two_factor)


@router.post("/account/security/2fa/setup")
async def start_two_factor(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    try:
        answer = await mfa_endpoints.set_up_two_factor(
            visit.member, request, visit.session, request_origin(request)
        )
    except ChainconsultError as exc:
        await visit.undo()
        return await _security(visit, exc.status_code, form=FormState(general=[exc.detail]))
    return await _security(visit, setup=TotpSetup(answer.secret, answer.otpauth_uri))


@router.post("/account/security/2fa/confirm")
async def confirm_two_factor(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        body = TotpConfirmRequest.model_validate(form.document(["code"]))
        answer = await mfa_endpoints.confirm_two_factor(
            body, visit.member, request, visit.session, request_origin(request)
        )
    except (ValidationError, ChainconsultError) as exc:
        await visit.undo()
        # The pending secret stays, but is never shown twice: set-up starts again to see one.
        return await _security(visit, _refused(form, exc), form=form)
    return await _security(visit, recovery_codes=answer.recovery_codes)


@router.post("/account/security/2fa/disable")
async def turn_off_two_factor(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        body = TotpDisableRequest.model_validate(form.document(["password", "code"]))
        await mfa_endpoints.turn_off_two_factor(
            body, visit.member, request, visit.session, request_origin(request)
        )
    except (ValidationError, ChainconsultError) as exc:
        await visit.undo()
        status = _refused(form, exc)
        return await _security(visit, status, form=form)
    return see_other("/account/security")


async def _wallets(visit: PageVisit, status: int = 200, form: FormState | None = None) -> Response:
    wallets = await WalletService(visit.session).of_account(visit.member.account_id)
    nonce = await SiweVerifier(visit.session, NO_RULES).new_nonce()
    settings = settings_of(visit.request)
    site = str(settings.email.public_url).rstrip("/")
    return await visit.render(
        "accounts/wallets.html",
        status_code=status,
        wallets=wallets,
        nonce=nonce,
        site=site,
        domain=site.split("://", 1)[1],
        chain_ids=settings.identity.siwe_chain_ids,
        form=form or FormState(),
    )


@router.get("/account/wallets")
async def wallets_page(visit: MemberVisit) -> Response:
    return await _wallets(visit)


@router.post("/account/wallets")
async def link_wallet(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        # A pasted message may carry the browser's CRLF line ends; EIP-4361 lines end in LF.
        document = form.document(["signature"])
        document["message"] = form.value("message").replace("\r\n", "\n").strip()
        body = SiweRequest.model_validate(document)
        await siwe_endpoints.link_wallet(
            body, visit.member, request, visit.session, request_origin(request)
        )
    except (ValidationError, ChainconsultError) as exc:
        await visit.undo()
        status = _refused(form, exc)
        return await _wallets(visit, status, form)
    return see_other("/account/wallets")


@router.post("/account/wallets/remove")
async def unlink_wallet(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        await siwe_endpoints.unlink_wallet(
            form.value("address"), visit.member, visit.session, request_origin(request)
        )
    except ChainconsultError as exc:
        await visit.undo()
        return await _wallets(visit, exc.status_code, FormState(general=[exc.detail]))
    return see_other("/account/wallets")
