"""The account page's data rights: download the export, erase the account (with the
password). The same service as `GET /api/v2/me/export` and `DELETE /api/v2/me`."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.auth import CSRF_COOKIE, SESSION_COOKIE
from chainconsult.accounts.endpoints import check_own_password
from chainconsult.accounts.pages import render_account
from chainconsult.accounts.visit import MemberPosted, MemberVisit
from chainconsult.errors import ChainconsultError
from chainconsult.privacy.endpoints import ERASE_REFUSAL
from chainconsult.privacy.schemas import ErasureRequest
from chainconsult.privacy.service import PrivacyService
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()


@router.get("/account/export")
async def download_export(visit: MemberVisit) -> Response:
    export = await PrivacyService(visit.session).export(visit.member)
    return Response(
        export.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="chainconsult-export.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/account/delete")
async def erase_account(request: Request, posted: MemberPosted) -> Response:
    visit = posted.visit
    principal = visit.member
    form = FormState.posted(posted.form)
    try:
        body = ErasureRequest.model_validate(form.document(["password"]))
        await check_own_password(
            request, visit.session, principal, body.password, refusal=ERASE_REFUSAL
        )
        await PrivacyService(visit.session).erase(principal)
    except (ValidationError, ChainconsultError) as exc:
        await visit.undo()
        if isinstance(exc, ValidationError):
            form.refuse(exc)
            status = 422
        else:
            form.errors["password"] = exc.detail
            status = exc.status_code
        return await render_account(visit, erase_form=form, status_code=status)
    response = RedirectResponse("/?notice=erased", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
