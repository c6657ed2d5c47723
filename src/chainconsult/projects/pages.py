"""Projects: post one, list mine (or the open ones, or my invitations), and the project page,
where the owner reads proposals, accepts one, completes the project and reviews the expert,
and an expert proposes (proposals/pages.py). Writes run the API's own handlers
(projects/endpoints.py) as functions: the same unit of work, rules and notifications."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import Query
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit
from chainconsult.audit.trail import request_origin
from chainconsult.errors import ChainconsultError
from chainconsult.experts.pages import VOCABULARY, expert_names
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from chainconsult.models.accounts import Role
from chainconsult.models.projects import ProjectStatus, ProposalStatus
from chainconsult.projects import endpoints
from chainconsult.projects.schemas import (
    ProjectFilters,
    ProjectRequest,
    ProjectUpdate,
    ProjectView,
    ReviewRequest,
)
from chainconsult.projects.service import CANCELLABLE, COMPLETABLE, ProjectService
from chainconsult.proposals.service import (
    ACCEPTABLE_ON,
    DECIDABLE,
    ProposalService,
    offers_proposal_form,
)
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()

_PROJECT_FIELDS = [
    "title",
    "description",
    "chains",
    "skills",
    "budget.min",
    "budget.max",
    "budget.currency",
    "deadline",
    "visibility",
    "invited_experts",
]
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


def see_project(project_id: uuid.UUID, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/projects/{project_id}?notice={notice}", status_code=303)


@router.get("/projects")
async def projects_page(
    visit: MemberVisit,
    view: Annotated[ProjectView | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    principal = visit.member
    if view is None:
        view = ProjectView.open if principal.role is Role.expert else ProjectView.mine
    page = await ProjectService(visit.session).listing(
        principal, view, ProjectFilters(), cursor, DEFAULT_PAGE_SIZE
    )
    return await visit.render(
        "projects/list.html", page=page, view=view.value, views=[v.value for v in ProjectView]
    )


@router.get("/projects/new")
async def new_project_page(
    visit: MemberVisit, invite: Annotated[uuid.UUID | None, Query()] = None
) -> Response:
    values: dict[str, str | list[str]] = {"budget.currency": "USD", "visibility": "public"}
    if invite is not None:
        values.update(visibility="invite_only", invited_experts=str(invite))
    return await _new_project(visit, FormState(values=values))


async def _new_project(visit: PageVisit, form: FormState, status_code: int = 200) -> Response:
    return await visit.render(
        "projects/new.html",
        status_code=status_code,
        form=form,
        tomorrow=(dt.date.today() + dt.timedelta(days=1)).isoformat(),
        **VOCABULARY,
    )


@router.post("/projects/new")
async def submit_project(posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form, lists=("skills", "chains"))
    document = form.document(_PROJECT_FIELDS, lines=("invited_experts",))
    try:
        body = ProjectRequest.model_validate(document)
        project = await endpoints.submit_project(body, visit.member, visit.session)
    except ValidationError as exc:
        return await _new_project(visit, form.refuse(exc), 422)
    except ChainconsultError as exc:
        await visit.undo()
        form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))
        return await _new_project(visit, form, exc.status_code)
    return see_project(project.id, "posted")


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
    await endpoints.complete_project(project_id, visit.member, visit.session)
    return see_project(project_id, "completed")


@router.post("/projects/{project_id:uuid}/cancel")
async def cancel(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    body = ProjectUpdate(status="cancelled")
    origin = request_origin(visit.request)
    await endpoints.update_project(project_id, body, visit.member, visit.session, origin)
    return see_project(project_id, "cancelled")


@router.post("/projects/{project_id:uuid}/review")
async def review(project_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    try:
        body = ReviewRequest.model_validate(form.document(["rating", "text"], integers=("rating",)))
        await endpoints.review_expert(project_id, body, visit.member, visit.session)
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
