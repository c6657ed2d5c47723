from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status

from chainconsult.accounts.auth import AdminAccount, CurrentAccount
from chainconsult.audit.trail import Origin
from chainconsult.config import EscrowSettings, settings_of
from chainconsult.escrow.jobs import resolve_dispute
from chainconsult.escrow.schemas import (
    PLAN_MAX_MILESTONES,
    DisputeRequest,
    EscrowFunding,
    EscrowRequest,
    EscrowState,
    MilestoneInput,
    MilestoneList,
    ResolutionQueued,
    ResolutionRequest,
    Transactions,
)
from chainconsult.escrow.service import EscrowService
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.jobs import DeferOptions, defer

projects_router = APIRouter(prefix="/projects", tags=["escrow"])
milestones_router = APIRouter(prefix="/milestones", tags=["escrow"])
admin_router = APIRouter(prefix="/admin/milestones", tags=["escrow"])


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    known: dict[int, str] = {
        403: "Not a party to the project, not its owner where the owner must act, or not an "
        "admin on an admin route.",
        404: "No such project or milestone (or not visible to you).",
        409: "`milestone-state`: the milestone is not in the state the action needs; "
        "`wallet-unverified`: the expert has no verified payout wallet; `conflict`: the "
        "project is not in progress.",
        422: "Invalid input (amounts not adding up to the accepted price, unknown token).",
        503: "`escrow-not-configured`: ESCROW_RPC_URL, ESCROW_CONTRACT or ESCROW_TOKENS unset.",
    }
    return {code: {"description": known[code]} for code in codes}


def _settings(request: Request) -> EscrowSettings:
    settings: EscrowSettings = settings_of(request).escrow
    return settings


MilestonePlanBody = Annotated[
    list[MilestoneInput],
    Body(
        min_length=1,
        max_length=PLAN_MAX_MILESTONES,
        description="The whole plan as a bare array `[{title, amount, due_date}]` (DESIGN.md), "
        "not the `{data, ...}` envelope GET answers: ids and statuses are the platform's.",
    ),
]


@projects_router.get(
    "/{project_id}/milestones", response_model=MilestoneList, responses=_problems(403, 404)
)
async def get_milestones(
    request: Request, project_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> MilestoneList:
    """The project's milestone plan with each milestone's status (client, expert, admins), in
    the list envelope `{data, next_cursor, currency, total}`."""
    service = EscrowService(session, _settings(request))
    return await service.plan(project_id=project_id, principal=principal)


@projects_router.put(
    "/{project_id}/milestones",
    response_model=MilestoneList,
    responses=_problems(403, 404, 409, 422),
)
async def put_milestones(
    request: Request,
    project_id: uuid.UUID,
    body: MilestonePlanBody,
    principal: CurrentAccount,
    session: DbSession,
) -> MilestoneList:
    """Replace the plan, sent as a bare array `[{title, amount, due_date}]`: the owner, once a
    proposal is accepted, while no milestone is funded; the amounts add up to the accepted
    price. Answers the new plan as GET does (`{data, next_cursor, currency, total}`)."""
    service = EscrowService(session, _settings(request))
    return await service.set_plan(project_id=project_id, principal=principal, items=body)


@projects_router.post(
    "/{project_id}/escrow",
    response_model=EscrowFunding,
    responses=_problems(403, 404, 409, 422, 503),
)
async def fund_escrow(
    request: Request,
    project_id: uuid.UUID,
    principal: CurrentAccount,
    session: DbSession,
    body: EscrowRequest | None = None,
) -> EscrowFunding:
    """The transactions the client's wallet signs to fund every draft milestone: one ERC-20
    `approve` of the total, then one `deposit` per milestone. The watcher marks each milestone
    funded once its deposit has ESCROW_CONFIRMATIONS confirmations."""
    service = EscrowService(session, _settings(request))
    return await service.prepare_funding(
        project_id=project_id, principal=principal, token=body.token if body else None
    )


@projects_router.get(
    "/{project_id}/escrow", response_model=EscrowState, responses=_problems(403, 404, 503)
)
async def get_escrow(
    request: Request, project_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> EscrowState:
    """The escrow as the platform last confirmed it on chain, with block numbers."""
    service = EscrowService(session, _settings(request))
    return await service.state(project_id=project_id, principal=principal)


@milestones_router.post(
    "/{milestone_id}/release",
    response_model=Transactions,
    responses=_problems(403, 404, 409, 503),
)
async def release_milestone(
    request: Request, milestone_id: uuid.UUID, principal: CurrentAccount, session: DbSession
) -> Transactions:
    """The release transaction for the depositor's wallet (the release happens on chain):
    the amount less PLATFORM_FEE_BPS to the expert's verified wallet, the fee to
    PLATFORM_FEE_ADDRESS."""
    service = EscrowService(session, _settings(request))
    return await service.release(milestone_id=milestone_id, principal=principal)


@milestones_router.post(
    "/{milestone_id}/dispute",
    response_model=Transactions,
    responses=_problems(403, 404, 409, 422, 503),
)
async def dispute_milestone(
    request: Request,
    milestone_id: uuid.UUID,
    body: DisputeRequest,
    principal: CurrentAccount,
    session: DbSession,
) -> Transactions:
    """The dispute transaction for the client's or the expert's wallet; the reason is kept
    by the platform and its hash on chain."""
    service = EscrowService(session, _settings(request))
    return await service.dispute(milestone_id=milestone_id, principal=principal, reason=body.reason)


@admin_router.post(
    "/{milestone_id}/resolution",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResolutionQueued,
    responses=_problems(403, 404, 409, 422, 503),
)
async def resolve_milestone(
    request: Request,
    milestone_id: uuid.UUID,
    body: ResolutionRequest,
    principal: AdminAccount,
    session: DbSession,
    origin: Origin,
) -> ResolutionQueued:
    """Award a disputed milestone: `expert_share_bps` of it (after the arbiter's fee) to the
    expert, the rest to the client. A job signs and sends the arbiter's transaction.

    409 `milestone-state` while an earlier award of this dispute is still being sent; once
    that job has failed for good (or was cancelled), a new award may be requested. Each
    request is audited (`escrow.resolution_requested`)."""
    service = EscrowService(session, _settings(request))
    milestone = await service.request_resolution(
        milestone_id=milestone_id, principal=principal, body=body, origin=origin
    )
    await defer(
        session,
        resolve_dispute,
        DeferOptions(lock=f"escrow-resolution-{milestone.id}"),
        milestone_id=str(milestone.id),
    )
    return ResolutionQueued(milestone_id=milestone.id)
