"""The escrow pages: a project's milestone plan (edited by the owner), the wallet steps (fund,
release, dispute) and the admin's arbitration page. Every write goes through EscrowService or
the API's own handler (endpoints.py), so the pages and the API cannot differ on a rule. The
wallet steps render the transactions the service returns; web/static/escrow.js sends them
through the browser's injected wallet (``window.ethereum``) where there is one."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import (
    AdminPosted,
    AdminVisit,
    MemberPosted,
    MemberVisit,
    PageVisit,
)
from chainconsult.audit.trail import request_origin
from chainconsult.config import settings_of
from chainconsult.errors import ChainconsultError
from chainconsult.escrow import endpoints
from chainconsult.escrow.schemas import (
    PLAN_MAX_MILESTONES,
    DisputeRequest,
    MilestoneInput,
    ResolutionRequest,
    Transactions,
)
from chainconsult.escrow.service import EscrowService
from chainconsult.models.escrow import MilestoneStatus
from chainconsult.models.projects import ProjectStatus
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()

PLAN_ROWS_SPARE = 2
"""Empty rows the plan form offers beyond the current milestones."""
_PLAN = TypeAdapter(
    Annotated[list[MilestoneInput], Field(min_length=1, max_length=PLAN_MAX_MILESTONES)]
)
_FIELDS = ("title", "amount", "due_date")
NOTICES = {
    "planned": "Milestone plan saved.",
    "resolution": "Resolution requested: a job sends the arbiter's transaction; the milestone "
    "shows as resolved once it is confirmed on chain.",
}


def token_amount(units: Decimal | str | int | None, symbol: str | None, decimals: int) -> str:
    """Token units as the token's amount with its symbol (``3,000.00 USDC``): exact, never a
    float; two decimals unless the amount needs more."""
    if units is None or symbol is None:
        return "not funded"
    amount = Decimal(int(Decimal(units))).scaleb(-decimals)
    shown = f"{amount:,.2f}" if amount == round(amount, 2) else f"{amount.normalize():,f}"
    return f"{shown} {symbol}"


def _wallet_step(
    what: str, transactions: Transactions | Any, chain_id: int, total: str | None = None
) -> dict[str, Any]:
    """What the page hands escrow.js: the unsigned transactions and the chain they are for."""
    items = [tx.model_dump() for tx in transactions.transactions]
    return {
        "what": what,
        "chain_id": chain_id,
        "total": total,
        "transactions": items,
        "json": json.dumps({"chain_id": chain_id, "transactions": items}),
    }


async def render_escrow(
    visit: PageVisit,
    project_id: uuid.UUID,
    *,
    plan_form: FormState | None = None,
    problem: str | None = None,
    wallet: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    settings = settings_of(visit.request).escrow
    principal = visit.member
    service = EscrowService(visit.session, settings)
    plan = await service.plan(project_id=project_id, principal=principal)
    project = await service.projects.visible(project_id, principal)
    is_client = project.client_id == principal.account_id
    decimals = {t.symbol: t.decimals for t in settings.tokens}
    editable = (
        is_client
        and project.status == ProjectStatus.in_progress
        and all(m.status == MilestoneStatus.draft for m in plan.data)
    )
    if plan_form is None:
        plan_form = FormState(
            values={
                f"m{i}.{name}": str(getattr(m, name))
                for i, m in enumerate(plan.data)
                for name in _FIELDS
            }
        )
    rows = len(plan.data) + PLAN_ROWS_SPARE
    while any(key.startswith(f"m{rows}.") for key in plan_form.values):
        rows += 1
    context: dict[str, Any] = {
        "project": project,
        "plan": plan,
        "is_client": is_client,
        "is_party": is_client or project.expert_id == principal.account_id,
        "is_admin": principal.is_admin,
        "configured": settings.configured,
        "tokens": [t.symbol for t in settings.tokens],
        "units": {
            m.id: token_amount(m.amount_units, m.token, decimals.get(m.token or "", 0))
            for m in plan.data
        },
        "editable": editable,
        "fundable": is_client
        and project.status == ProjectStatus.in_progress
        and any(m.status == MilestoneStatus.draft for m in plan.data),
        "plan_form": plan_form,
        "plan_rows": range(rows),
        "problem": problem,
        "wallet": wallet,
        "notice": NOTICES.get(visit.request.query_params.get("notice", "")),
    }
    return await visit.render("escrow/project.html", status_code=status_code, **context)


@router.get("/projects/{project_id:uuid}/escrow")
async def escrow_page(project_id: uuid.UUID, visit: MemberVisit) -> Response:
    return await render_escrow(visit, project_id)


@router.post("/projects/{project_id:uuid}/escrow/plan")
async def save_plan(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    rows: list[dict[str, str]] = []
    index = 0
    while any(f"m{index}.{name}" in form.values for name in _FIELDS):
        row = {name: form.value(f"m{index}.{name}").strip() for name in _FIELDS}
        if any(row.values()):  # an empty row is no milestone
            rows.append({**row, "_row": str(index)})
        index += 1
    try:
        items = _PLAN.validate_python([{k: r[k] for k in _FIELDS} for r in rows])
        service = EscrowService(visit.session, settings_of(visit.request).escrow)
        await service.set_plan(project_id=project_id, principal=visit.member, items=items)
    except ValidationError as exc:
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            position, name = [*error["loc"], "", ""][:2]
            if isinstance(position, int) and name:
                form.errors[f"m{rows[position]['_row']}.{name}"] = message
            else:  # the plan as a whole: no milestone, or too many
                form.general.append(f"The plan: {message}")
        return await render_escrow(visit, project_id, plan_form=form, status_code=422)
    except ChainconsultError as exc:
        await visit.undo()
        form.refuse_problem(exc.detail)
        return await render_escrow(visit, project_id, plan_form=form, status_code=exc.status_code)
    return RedirectResponse(f"/projects/{project_id}/escrow?notice=planned", status_code=303)


async def _refused(visit: PageVisit, project_id: uuid.UUID, exc: ChainconsultError) -> Response:
    await visit.undo()
    return await render_escrow(visit, project_id, problem=exc.detail, status_code=exc.status_code)


@router.post("/projects/{project_id:uuid}/escrow/fund")
async def fund(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    settings = settings_of(visit.request).escrow
    token = posted.form.get("token")
    try:
        funding = await EscrowService(visit.session, settings).prepare_funding(
            project_id=project_id,
            principal=visit.member,
            token=token if isinstance(token, str) and token else None,
        )
    except ChainconsultError as exc:
        return await _refused(visit, project_id, exc)
    decimals = {t.symbol: t.decimals for t in settings.tokens}[funding.token]
    total = token_amount(funding.amount_units, funding.token, decimals)
    wallet = _wallet_step("Fund the draft milestones", funding, funding.chain_id, total)
    return await render_escrow(visit, project_id, wallet=wallet)


async def _milestone_step(
    posted: MemberPosted, milestone_id: uuid.UUID, what: str, reason: str | None = None
) -> Response:
    visit = posted.visit
    settings = settings_of(visit.request).escrow
    service = EscrowService(visit.session, settings)
    milestone = await service.milestone_for(milestone_id=milestone_id, principal=visit.member)
    project_id = milestone.project_id
    try:
        if reason is None:
            step = await service.release(milestone_id=milestone_id, principal=visit.member)
        else:
            body = DisputeRequest.model_validate({"reason": reason})
            step = await service.dispute(
                milestone_id=milestone_id, principal=visit.member, reason=body.reason
            )
    except ValidationError:
        return await render_escrow(
            visit,
            project_id,
            problem="Say why you dispute the milestone (at least 5 characters).",
            status_code=422,
        )
    except ChainconsultError as exc:
        return await _refused(visit, project_id, exc)
    wallet = _wallet_step(f"{what} “{milestone.title}”", step, settings.chain_id)
    return await render_escrow(visit, project_id, wallet=wallet)


@router.post("/milestones/{milestone_id:uuid}/release")
async def release(milestone_id: uuid.UUID, posted: MemberPosted) -> Response:
    return await _milestone_step(posted, milestone_id, "Release")


@router.post("/milestones/{milestone_id:uuid}/dispute")
async def dispute(milestone_id: uuid.UUID, posted: MemberPosted) -> Response:
    reason = posted.form.get("reason")
    return await _milestone_step(
        posted, milestone_id, "Dispute", reason if isinstance(reason, str) else ""
    )


# The admin's arbitration ---------------------------------------------------------------------


async def render_arbitration(
    visit: PageVisit,
    milestone_id: uuid.UUID,
    *,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    settings = settings_of(visit.request).escrow
    service = EscrowService(visit.session, settings)
    milestone = await service.milestone_for(milestone_id=milestone_id, principal=visit.member)
    plan = await service.plan(project_id=milestone.project_id, principal=visit.member)
    decimals = {t.symbol: t.decimals for t in settings.tokens}
    shown = next(m for m in plan.data if m.id == milestone.id)
    context: dict[str, Any] = {
        "milestone": milestone,
        "reason": await service.confirmed_dispute_reason(milestone),
        "shown": shown,
        "currency": plan.currency,
        "units": token_amount(
            milestone.amount_units, milestone.token_symbol, decimals.get(shown.token or "", 0)
        ),
        "awaiting": milestone.status == MilestoneStatus.disputed,
        "form": form or FormState(values={"expert_share_bps": "5000"}),
        "notice": NOTICES.get(visit.request.query_params.get("notice", "")),
    }
    return await visit.render("escrow/arbitration.html", status_code=status_code, **context)


@router.get("/admin/milestones/{milestone_id:uuid}/resolution")
async def arbitration_page(milestone_id: uuid.UUID, visit: AdminVisit) -> Response:
    return await render_arbitration(visit, milestone_id)


@router.post("/admin/milestones/{milestone_id:uuid}/resolution")
async def arbitrate(milestone_id: uuid.UUID, posted: AdminPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        body = ResolutionRequest.model_validate(
            form.document(["expert_share_bps", "note"], integers=("expert_share_bps",))
        )
        # The API's handler: the same award, audit and job.
        await endpoints.resolve_milestone(
            visit.request,
            milestone_id,
            body,
            visit.member,
            visit.session,
            request_origin(visit.request),
        )
    except ValidationError as exc:
        return await render_arbitration(visit, milestone_id, form=form.refuse(exc), status_code=422)
    except ChainconsultError as exc:
        await visit.undo()
        form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))
        return await render_arbitration(visit, milestone_id, form=form, status_code=exc.status_code)
    return RedirectResponse(
        f"/admin/milestones/{milestone_id}/resolution?notice=resolution", status_code=303
    )
