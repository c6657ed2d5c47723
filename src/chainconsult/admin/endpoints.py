from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from chainconsult.accounts.auth import AdminAccount
from chainconsult.accounts.schemas import AccountResponse, PlanChangeRequest
from chainconsult.accounts.service import AccountService
from chainconsult.accounts.throttle import LoginThrottle
from chainconsult.infra.db.session import DbSession

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/users/{account_id}/plan", response_model=AccountResponse)
async def change_plan(
    account_id: uuid.UUID, body: PlanChangeRequest, admin: AdminAccount, session: DbSession
) -> AccountResponse:
    """Move an account to another plan; limits and quotas follow on its next request."""
    account = await AccountService(session).change_plan(account_id=account_id, plan=body.plan)
    return AccountResponse.model_validate(account)


@router.post("/users/{account_id}/unlock", status_code=status.HTTP_204_NO_CONTENT)
async def unlock_login(
    account_id: uuid.UUID, request: Request, admin: AdminAccount, session: DbSession
) -> None:
    """Lift the failed-login delay or lockout of an account at once (it otherwise ends with
    its window). The next wrong password starts a new count."""
    account = await AccountService(session).get(account_id)
    throttle = LoginThrottle(request.app.state.settings.login_throttle)
    await throttle.clear_account(session, email=account.email)
