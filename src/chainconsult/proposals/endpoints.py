from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from chainconsult.accounts.auth import CurrentAccount
from chainconsult.accounts.verification import UNVERIFIED_RESPONSE
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.db.transaction import unit_of_work
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from chainconsult.proposals.schemas import ProposalRequest, ProposalResponse
from chainconsult.proposals.service import ProposalService

router = APIRouter(tags=["proposals"])


@router.post(
    "/projects/{project_id}/proposals",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalResponse,
    responses=UNVERIFIED_RESPONSE,
)
async def propose(
    project_id: uuid.UUID, body: ProposalRequest, principal: CurrentAccount, session: DbSession
) -> ProposalResponse:
    """Propose on an open project (approved experts only; not on your own project; one
    active proposal per project). The owner is notified."""
    # One autocommitted statement (ProposalService.submit), not a unit of work.
    proposal = await ProposalService(session).submit(
        project_id=project_id, principal=principal, body=body
    )
    return ProposalResponse.model_validate(proposal)


@router.get("/projects/{project_id}/proposals", response_model=Page[ProposalResponse])
async def list_proposals(
    project_id: uuid.UUID,
    principal: CurrentAccount,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[ProposalResponse]:
    """The project's proposals, oldest first: all of them for the owner, your own otherwise."""
    return await ProposalService(session).list_for_project(
        project_id=project_id, principal=principal, cursor=cursor, limit=limit
    )


@router.post("/proposals/{proposal_id}/accept", response_model=ProposalResponse)
async def accept(
    proposal_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> ProposalResponse:
    """Accept a pending proposal on your open project: the project moves to in_progress, every
    other pending proposal is declined, and each expert is notified."""
    # REPEATABLE READ: the accept acts on one snapshot; if the project changed after it was
    # taken (another accept won the row lock), PostgreSQL refuses the lock with a
    # serialization failure and the unit of work runs again on the new state (-> 409).
    proposal = await unit_of_work(
        session,
        lambda s: ProposalService(s).accept(proposal_id=proposal_id, principal=principal),
        isolation="REPEATABLE READ",
    )
    return ProposalResponse.model_validate(proposal)


@router.post("/proposals/{proposal_id}/withdraw", response_model=ProposalResponse)
async def withdraw(
    proposal_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> ProposalResponse:
    """Withdraw your pending proposal; you may propose again afterwards."""
    proposal = await unit_of_work(
        session,
        lambda s: ProposalService(s).withdraw(proposal_id=proposal_id, principal=principal),
    )
    return ProposalResponse.model_validate(proposal)
