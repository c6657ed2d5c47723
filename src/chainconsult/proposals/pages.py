"""The project page, where the owner reads proposals, accepts one, completes the project and
reviews the expert, and an expert proposes or withdraws. Here rather than in projects/ because
it shows proposals (proposals build on projects, not the other way round). The API's own
handlers (projects/endpoints.py, proposals/endpoints.py) run every write, so the page and the
API cannot differ on who may propose, on the price's currency or on what accepting does."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit
from chainconsult.audit.trail import request_origin
from chainconsult.errors import ChainconsultError
from chainconsult.experts.pages import VOCABULARY, expert_names
from chainconsult.infra.pagination import MAX_PAGE_SIZE
from chainconsult.models.projects import ProjectStatus, ProposalStatus
from chainconsult.projects import endpoints as project_endpoints
from chainconsult.projects.pages import see_project
from chainconsult.projects.schemas import ProjectUpdate, ReviewRequest
from chainconsult.projects.service import CANCELLABLE, COMPLETABLE, ProjectService
from chainconsult.proposals import endpoints
from chainconsult.proposals.schemas import ProposalRequest
from chainconsult.proposals.service import (
    ACCEPTABLE_ON,
    DECIDABLE,
    ProposalService,
    offers_proposal_form,
)
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()

ACTIVE_PROPOSAL = (ProposalStatus.pending, ProposalStatus.accepted)
NOTICES = {
    "posted": "Project posted. Matching experts are notified.",
    "proposed": "Proposal sent. The client is notified.",
    "accepted": "Proposal accepted: the project is in progress and the expert is notified.",
    "withdrawn": "Proposal withdrawn.",
    "completed": "Project marked complete. You can now review the expert.",
    "reviewed": "Review published on the expert's profile.",
    "cancelled": "Project cancelled.",
}


async def render_project(
    visit: PageVisit,
    project_id: uuid.UUID,
    *,
    proposal_form: FormState | None = None,
    review_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    """The project page for its visitor: what the API shows them (404 for an invite-only
    project they are not part of), with the forms of what they may do next."""
    principal = visit.member
    service = ProjectService(visit.session)
    project = await service.visible(project_id, principal)
    shown = await service.response(project, principal)
    proposals = await ProposalService(visit.session).list_for_project(
        project_id=project_id, principal=principal, cursor=None, limit=MAX_PAGE_SIZE
    )
    owner = principal.is_admin or project.client_id == principal.account_id
    mine = [p for p in proposals.data if p.expert_id == principal.account_id]
    review = None
    if project.status == ProjectStatus.completed:
        review = await service.repository.review_of(project.id)
    names = await expert_names(
        visit, [p.expert_id for p in proposals.data] + [e for e in [project.expert_id] if e]
    )
    context: dict[str, Any] = {
        "project": shown,
        "proposals": proposals.data,
        "names": names,
        "owner": owner,
        "is_client": project.client_id == principal.account_id,
        "may_propose": offers_proposal_form(
            project, principal, active=any(p.status in ACTIVE_PROPOSAL for p in mine)
        ),
        "review": review,
        # The transitions' own lists (services), so the page offers only what they allow.
        "acceptable_on": ACCEPTABLE_ON,
        "decidable": DECIDABLE,
        "cancellable": CANCELLABLE,
        "completable": COMPLETABLE,
        "proposal_form": proposal_form
        or FormState(values={"price.currency": shown.budget.currency.value}),
        "review_form": review_form or FormState(),
        "notice": NOTICES.get(visit.request.query_params.get("notice", "")),
        **VOCABULARY,
    }
    return await visit.render("projects/detail.html", status_code=status_code, **context)


@router.get("/projects/{project_id:uuid}")
async def project_page(project_id: uuid.UUID, visit: MemberVisit) -> Response:
    return await render_project(visit, project_id)


@router.post("/projects/{project_id:uuid}/complete")
async def complete(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    await project_endpoints.complete_project(project_id, visit.member, visit.session)
    return see_project(project_id, "completed")


@router.post("/projects/{project_id:uuid}/cancel")
async def cancel(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    body = ProjectUpdate(status="cancelled")
    origin = request_origin(visit.request)
    await project_endpoints.update_project(project_id, body, visit.member, visit.session, origin)
    return see_project(project_id, "cancelled")


@router.post("/projects/{project_id:uuid}/review")
async def review(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        body = ReviewRequest.model_validate(form.document(["rating", "text"], integers=("rating",)))
        await project_endpoints.review_expert(project_id, body, visit.member, visit.session)
    except ValidationError as exc:
        return await render_project(
            visit, project_id, review_form=form.refuse(exc), status_code=422
        )
    except ChainconsultError as exc:
        await visit.undo()
        form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))
        return await render_project(
            visit, project_id, review_form=form, status_code=exc.status_code
        )
    return see_project(project_id, "reviewed")


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
