from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from chainconsult.accounts.auth import CSRF_COOKIE, SESSION_COOKIE, CurrentAccount
from chainconsult.accounts.endpoints import check_own_password
from chainconsult.infra.db.session import DbSession
from chainconsult.privacy.schemas import ErasureRequest, ExportResponse
from chainconsult.privacy.service import PrivacyService

router = APIRouter(prefix="/me", tags=["privacy"])

ERASE_REFUSAL = "The password does not match; nothing was erased."


@router.get("/export", response_model=ExportResponse)
async def export_my_data(principal: CurrentAccount, session: DbSession) -> ExportResponse:
    """Everything stored about you (GDPR art. 15 and 20), as JSON, table by table."""
    return await PrivacyService(session).export(principal)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def erase_me(
    body: ErasureRequest,
    principal: CurrentAccount,
    session: DbSession,
    request: Request,
    response: Response,
) -> None:
    """Erase your personal data (GDPR art. 17), confirmed with your password. What
    counterparties must keep (your reviews, accepted proposals, projects someone was hired
    for) stays, anonymised; every login is revoked; the record of emails sent to you and the
    queued or finished jobs about you are deleted, and no further email is sent. This cannot
    be undone."""
    await check_own_password(request, session, principal, body.password, refusal=ERASE_REFUSAL)
    await PrivacyService(session).erase(principal)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
