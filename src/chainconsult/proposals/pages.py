"""Proposals from the project page: an expert proposes or withdraws, the owner accepts. The
API's own handlers (proposals/endpoints.py) run them, so the page and the API cannot differ on
who may propose, on the price's currency or on what accepting does."""

from __future__ import annotations

import uuid

from pydantic import ValidationError
from starlette.responses import Response

from chainconsult.accounts.visit import MemberPosted
from chainconsult.errors import ChainconsultError
from chainconsult.projects.pages import render_project, see_project
from chainconsult.proposals import endpoints
from chainconsult.proposals.schemas import ProposalRequest
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()


@router.post("/projects/{project_id:uuid}/proposals")
async def propose(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    document = form.document(
        ["cover_letter", "price.amount", "price.currency", "estimated_days"],
        integers=("estimated_days",),
    )
    try:
        body = ProposalRequest.model_validate(document)
        await endpoints.propose(project_id, body, visit.member, visit.session)
    except ValidationError as exc:
        return await render_project(
            visit, project_id, proposal_form=form.refuse(exc), status_code=422
        )
    except ChainconsultError as exc:
        await visit.undo()
        form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))
        return await render_project(
            visit, project_id, proposal_form=form, status_code=exc.status_code
        )
    return see_project(project_id, "proposed")


@router.post("/projects/{project_id:uuid}/proposals/{proposal_id:uuid}/accept")
async def accept(project_id: uuid.UUID, proposal_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    await endpoints.accept(proposal_id, visit.member, visit.session)
    return see_project(project_id, "accepted")


@router.post("/projects/{project_id:uuid}/proposals/{proposal_id:uuid}/withdraw")
async def withdraw(project_id: uuid.UUID, proposal_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    await endpoints.withdraw(proposal_id, visit.member, visit.session)
    return see_project(project_id, "withdrawn")
