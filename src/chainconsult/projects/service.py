"""Project requests: submit within the plan's quota, see (by visibility), edit while open,
cancel, complete, review. Owners act on their own projects, admins on all; a project the
caller may not see answers 404, exactly like a missing one."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal
from chainconsult.accounts.verification import require_verified_email
from chainconsult.audit.trail import AuditTrail, RequestOrigin
from chainconsult.errors import (
    ChainconsultError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    field_error,
)
from chainconsult.experts.repository import ExpertRepository
from chainconsult.experts.service import directory_changed
from chainconsult.infra.cache import body_query, invalidate_after_commit
from chainconsult.infra.db.rule_logic import PYTHON, Logic
from chainconsult.infra.monitoring.business import count_after_commit
from chainconsult.infra.pagination import Page
from chainconsult.models.accounts import Plan
from chainconsult.models.base import utcnow
from chainconsult.models.projects import (
    Project,
    ProjectStatus,
    Proposal,
    ProposalStatus,
    Review,
    Visibility,
)
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService
from chainconsult.projects.announcements import Announcements
from chainconsult.projects.board import NEWEST_FIRST, OpenProjects, project_page
from chainconsult.projects.repository import ProjectRepository
from chainconsult.projects.schemas import (
    ProjectFilters,
    ProjectRequest,
    ProjectResponse,
    ProjectUpdate,
    ProjectView,
    ReviewRequest,
)

OPEN_PROJECT_QUOTA: dict[Plan, int | None] = {Plan.free: 2, Plan.pro: 20, Plan.enterprise: None}
"""Open projects a client may have at once, by plan (None: unlimited)."""


CANCELLABLE = (ProjectStatus.open, ProjectStatus.in_progress)
"""The statuses a project may be cancelled from, by its owner, an admin or an erasure."""
COMPLETABLE = (ProjectStatus.in_progress,)
"""The statuses a project may be marked complete from."""

OPEN_PROJECTS_TAG = "projects:open"
"""Carried by every cached page of the open project list."""
OPEN_PROJECTS_PAGE = body_query("projects.open", Page[ProjectResponse], ttl=120)


def open_projects_changed(session: AsyncSession) -> None:
    """Drop the cached open-project pages when ``session`` commits, in every process: any
    project created, edited, cancelled, accepted or erased may change them."""
    invalidate_after_commit(session, [OPEN_PROJECTS_TAG])


class QuotaExceeded(ChainconsultError):
    status_code = 403
    slug = "quota-exceeded"
    title = "Plan quota exceeded"


class Placed(Protocol):
    """What deciding who may see a project reads of it: a ``Project``, the columns of it a
    caller read on its own (a proposal's locked read), or those columns in SQL."""

    @property
    def id(self) -> Any: ...
    @property
    def client_id(self) -> Any: ...
    @property
    def expert_id(self) -> Any: ...
    @property
    def visibility(self) -> Any: ...


def sees(
    project: Placed, *, viewer_id: Any, is_admin: Any, invited: Any, logic: Logic = PYTHON
) -> Any:
    """Who may see a project, the rule's one home: a public project, an admin, the project's
    owner or its expert, or an invited expert. ``may_see`` decides it in Python, the proposal
    statement (proposals/service.py) in SQL, through ``logic``."""
    return logic.any(
        project.visibility == Visibility.public,
        is_admin,
        project.client_id == viewer_id,
        project.expert_id == viewer_id,
        invited,
    )


class ProjectService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = ProjectRepository(session)

    # --- reading ---------------------------------------------------------------------

    async def visible(
        self, project_id: uuid.UUID, principal: Principal, *, lock: bool = False
    ) -> Project:
        """The project if the caller may see it, else 404 (never 403: an invite-only project
        must not reveal that it exists)."""
        project = await self.repository.get(project_id, lock=lock)
        if project is None or not await self.may_see(project, principal):
            raise NotFound("No such project.")
        return project

    async def may_see(self, project: Placed, principal: Principal) -> bool:
        """``sees``, reading the invitation only when nothing else lets the caller in."""
        viewer, is_admin = principal.account_id, principal.is_admin
        if sees(project, viewer_id=viewer, is_admin=is_admin, invited=False):
            return True
        invited = await self.repository.is_invited(project.id, viewer)
        return bool(sees(project, viewer_id=viewer, is_admin=is_admin, invited=invited))

    async def owned(
        self, project_id: uuid.UUID, principal: Principal, *, lock: bool = True
    ) -> Project:
        """A project the caller may change: its owner's, or any for an admin."""
        project = await self.visible(project_id, principal, lock=lock)
        if project.client_id != principal.account_id and not principal.is_admin:
            raise Forbidden("Only the project's owner can do this.")
        return project

    async def response(self, project: Project, principal: Principal) -> ProjectResponse:
        body = ProjectResponse.model_validate(project)
        if principal.is_admin or project.client_id == principal.account_id:
            body.invited_experts = await self.repository.invited(project.id)
        return body

    async def listing(
        self,
        principal: Principal,
        view: ProjectView,
        filters: ProjectFilters,
        cursor: str | None,
        limit: int,
    ) -> Page[ProjectResponse]:
        if view is ProjectView.open:
            return await OpenProjects(self.session).search(filters, cursor, limit)
        after = NEWEST_FIRST[view].after(cursor)
        if view is ProjectView.mine:
            rows = await self.repository.owned_by(
                principal.account_id, filters, after=after, limit=limit + 1
            )
        else:
            rows = await self.repository.invitations_of(
                principal.account_id, filters, after=after, limit=limit + 1
            )
        page = project_page(rows, view, limit)
        if view is ProjectView.mine:
            lists = await self.repository.invited_to([item.id for item in page.data])
            for item in page.data:
                item.invited_experts = lists[item.id]
        return page

    # --- writing ---------------------------------------------------------------------

    async def submit(self, *, principal: Principal, body: ProjectRequest) -> Project:
        require_verified_email(principal)
        _check_deadline(body.deadline)
        invited = await self._checked_invitations(body.invited_experts, principal)
        account = await self.repository.lock_account(principal.account_id)
        if account is None:
            raise NotFound("No such account.")
        quota = OPEN_PROJECT_QUOTA[Plan(account.plan)]
        if quota is not None:
            open_now = await self.repository.count_open(account.id)
            if open_now >= quota:
                raise QuotaExceeded(
                    f"The {account.plan} plan allows {quota} open projects and you have "
                    f"{open_now}; complete or cancel one, or upgrade the plan.",
                    plan=account.plan,
                    limit=quota,
                    open_projects=open_now,
                )
        project = await self.repository.add(
            Project(
                client_id=account.id,
                title=body.title,
                description=body.description,
                chains=[chain.value for chain in body.chains],
                skills=[skill.value for skill in body.skills],
                budget_min=body.budget.min,
                budget_max=body.budget.max,
                budget_currency=body.budget.currency.value,
                deadline=body.deadline,
                visibility=body.visibility.value,
                status=ProjectStatus.open,
            )
        )
        new_invitees = await self.repository.replace_invitations(project.id, invited)
        await Announcements(self.session).posted(project, new_invitees)
        count_after_commit(self.session, "project_submitted")
        open_projects_changed(self.session)
        return project

    async def update(
        self,
        *,
        project_id: uuid.UUID,
        principal: Principal,
        body: ProjectUpdate,
        origin: RequestOrigin,
    ) -> Project:
        project = await self.owned(project_id, principal)
        changes = body.model_dump(exclude_unset=True, exclude={"status"})
        if body.status == "cancelled":
            if changes:
                raise InvalidInput("Cancel on its own, without other changes.")
            await self._cancel(project, principal, origin)
            return project
        if project.status != ProjectStatus.open:
            raise Conflict(f"The project is {project.status}; only open projects can be edited.")
        if body.deadline is not None:
            _check_deadline(body.deadline)
        was_public = project.visibility == Visibility.public
        for name in ("title", "description", "deadline"):
            if name in changes:
                setattr(project, name, getattr(body, name))
        if body.chains is not None:
            project.chains = [chain.value for chain in body.chains]
        if body.skills is not None:
            project.skills = [skill.value for skill in body.skills]
        if body.budget is not None:
            project.budget_min = body.budget.min
            project.budget_max = body.budget.max
            project.budget_currency = body.budget.currency.value
        if body.visibility is not None:
            project.visibility = body.visibility.value
        new_invitees: list[uuid.UUID] = []
        if body.invited_experts is not None:
            invited = await self._checked_invitations(body.invited_experts, principal, project)
            new_invitees = await self.repository.replace_invitations(project.id, invited)
        project.updated_at = utcnow()
        await self.session.flush()
        open_projects_changed(self.session)
        if project.visibility == Visibility.invite_only and new_invitees:
            await Announcements(self.session).to_invitees(project, new_invitees)
        elif project.visibility == Visibility.public and not was_public:
            await Announcements(self.session).to_matching_experts(project)
        return project

    async def complete(self, *, project_id: uuid.UUID, principal: Principal) -> Project:
        project = await self.owned(project_id, principal)
        if project.status not in COMPLETABLE:
            raise Conflict(
                f"The project is {project.status}; only a project in progress can be completed."
            )
        project.status = ProjectStatus.completed
        project.completed_at = utcnow()
        await self.session.flush()
        if project.expert_id is not None:
            await NotificationService(self.session).notify(
                recipients=[project.expert_id],
                kind=NotificationKind.project_completed,
                payload={"project_id": project.id, "project_title": project.title},
            )
        count_after_commit(self.session, "project_completed")
        return project

    async def review(
        self, *, project_id: uuid.UUID, principal: Principal, body: ReviewRequest
    ) -> Review:
        project = await self.visible(project_id, principal, lock=True)
        if project.client_id != principal.account_id:
            raise Forbidden("Only the client who owns the project can review its expert.")
        if project.status != ProjectStatus.completed or project.expert_id is None:
            raise Conflict("Only a completed project's expert can be reviewed.")
        try:
            async with self.session.begin_nested():
                review = await self.repository.add_review(
                    Review(
                        project_id=project.id,
                        expert_id=project.expert_id,
                        reviewer_id=principal.account_id,
                        rating=body.rating,
                        text=body.text,
                    )
                )
        except IntegrityError as exc:
            raise Conflict("This project was already reviewed; a review is final.") from exc
        # Same transaction as the review: the directory never shows a rating without it.
        await ExpertRepository(self.session).add_rating(project.expert_id, body.rating)
        directory_changed(self.session, project.expert_id)
        await NotificationService(self.session).notify(
            recipients=[project.expert_id],
            kind=NotificationKind.review_received,
            payload={"project_id": project.id, "review_id": review.id, "rating": body.rating},
        )
        return review

    # --- helpers ---------------------------------------------------------------------

    async def _cancel(self, project: Project, principal: Principal, origin: RequestOrigin) -> None:
        if project.status not in CANCELLABLE:
            raise Conflict(f"The project is already {project.status}.")
        previous = project.status
        now = utcnow()
        project.status = ProjectStatus.cancelled
        project.cancelled_at = now
        declined = await self.session.execute(
            update(Proposal)
            .where(Proposal.project_id == project.id, Proposal.status == ProposalStatus.pending)
            .values(status=ProposalStatus.declined, decided_at=now, updated_at=now)
            .returning(Proposal.id, Proposal.expert_id)
        )
        await Announcements(self.session).declined(
            project, declined.all(), reason="project_cancelled"
        )
        await AuditTrail(self.session).record(
            actor_id=principal.account_id,
            action="project.cancelled",
            resource_type="project",
            resource_id=project.id,
            origin=origin,
            details={"previous_status": previous, "by_admin": principal.is_admin},
        )
        await self.session.flush()
        open_projects_changed(self.session)

    async def _checked_invitations(
        self,
        expert_ids: Sequence[uuid.UUID],
        principal: Principal,
        project: Project | None = None,
    ) -> list[uuid.UUID]:
        unique = list(dict.fromkeys(expert_ids))
        owner = project.client_id if project is not None else principal.account_id
        if owner in unique:
            raise InvalidInput(
                "You cannot invite yourself.",
                errors=[field_error("invited_experts", "contains the project's owner")],
            )
        unknown = set(unique) - await self.repository.existing_experts(unique)
        if unknown:
            raise InvalidInput(
                "Only approved experts can be invited.",
                errors=[
                    field_error("invited_experts", f"{expert} is not an approved expert")
                    for expert in sorted(unknown, key=str)
                ],
            )
        return unique


def _check_deadline(deadline: dt.date) -> None:
    if deadline <= dt.datetime.now(dt.UTC).date():
        raise InvalidInput(
            "The deadline must be after today.",
            errors=[field_error("deadline", "must be a future date")],
        )
