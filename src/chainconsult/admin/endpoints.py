from __future__ import annotations

import uuid

from fastapi import APIRouter

from chainconsult.accounts.auth import AdminAccount
from chainconsult.accounts.schemas import AccountResponse, PlanChangeRequest
from chainconsult.accounts.service import AccountService
from chainconsult.infra.db.session import DbSession

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/users/{account_id}/plan", response_model=AccountResponse)
async def change_plan(
    account_id: uuid.UUID, body: PlanChangeRequest, admin: AdminAccount, session: DbSession
) -> AccountResponse:
    """Move an account to another plan; limits and quotas follow on its next request."""
    account = await AccountService(session).change_plan(account_id=account_id, plan=body.plan)
    return AccountResponse.model_validate(account)
