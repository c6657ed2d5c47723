"""Projects: post one, list mine (or the open ones, or my invitations). The project page
itself shows proposals, so it lives with them (proposals/pages.py). Writes run the API's own
handlers (projects/endpoints.py) as functions: the same unit of work, rules and
notifications."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import Query
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit
from chainconsult.errors import ChainconsultError
from chainconsult.experts.pages import VOCABULARY
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE
from chainconsult.models.accounts import Role
from chainconsult.projects import endpoints
from chainconsult.projects.schemas import (
    ProjectFilters,
    ProjectRequest,
    ProjectView,
)
from chainconsult.projects.service import ProjectService
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
