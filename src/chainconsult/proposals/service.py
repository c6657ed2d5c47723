"""Proposals and matching: one active proposal per expert per project, never on one's own
project; accepting one (under the project's row lock) starts the work and declines the rest."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal
from chainconsult.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from chainconsult.infra.db.faults import constraint_name
from chainconsult.infra.monitoring.business import count_after_commit
from chainconsult.infra.pagination import Page, decode_cursor, encode_cursor
from chainconsult.models.accounts import Role
from chainconsult.models.base import utcnow
from chainconsult.models.projects import Project, ProjectStatus, Proposal, ProposalStatus
from chainconsult.notifications.schemas import NotificationKind
from chainconsult.notifications.service import NotificationService, notifying_with
from chainconsult.projects.service import ProjectService, open_projects_changed
from chainconsult.proposals.repository import (
    INSERTED_PROPOSAL,
    ProposalRepository,
    inserted_proposal_parameters,
)
from chainconsult.proposals.schemas import ProposalRequest, ProposalResponse

_CURSOR_KIND = "proposals"

# The proposal, the owner's notification and its email job: one statement. A proposal is the
# platform's most frequent write, and an ORM flush plus a statement of its own cost a fifth of
# its CPU (bench/RESULTS.md, "A proposal in one write statement").
_SUBMITTED = notifying_with(INSERTED_PROPOSAL)
_ONE_ACTIVE = "uq_proposals_one_active"


class ProposalService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = ProposalRepository(session)
        self.projects = ProjectService(session)

    async def submit(
        self, *, project_id: uuid.UUID, principal: Principal, body: ProposalRequest
    ) -> Proposal:
        # The project's row lock orders this against a concurrent accept or cancel.
        found = await self.repository.project_with_standing(project_id, principal.account_id)
        if found is None or not await self.projects.may_see(found[0], principal):
            raise NotFound("No such project.")
        project, has_profile, has_active = found
        if principal.role is not Role.expert or not has_profile:
            raise Forbidden("Only approved experts can propose; apply to become one first.")
        if project.client_id == principal.account_id:
            raise Forbidden("You cannot propose on your own project.")
        if project.status != ProjectStatus.open:
            raise Conflict(f"The project is {project.status}; proposals are closed.")
        if body.price.currency.value != project.budget_currency:
            raise InvalidInput(
                "Price the proposal in the project's budget currency.",
                errors=[field_error("price.currency", f"must be {project.budget_currency}")],
            )
        if has_active:
            raise Conflict("You already have an active proposal on this project.")
        now = utcnow()
        # Never added to the session: the statement below writes it, with the values set
        # here, and the caller answers from it.
        proposal = Proposal(
            id=uuid.uuid4(),
            project_id=project.id,
            expert_id=principal.account_id,
            cover_letter=body.cover_letter,
            price_amount=body.price.amount,
            price_currency=body.price.currency.value,
            estimated_days=body.estimated_days,
            status=ProposalStatus.pending,
            created_at=now,
            updated_at=now,
            decided_at=None,
        )
        # The project's row lock serializes proposals on it, so the check above holds; the
        # unique index stays the last word. No savepoint around the insert: a violation ends
        # the whole unit of work (rolled back as a 409), so there is nothing to go on with.
        try:
            await NotificationService(self.session).notify(
                recipients=[project.client_id],
                kind=NotificationKind.proposal_received,
                payload={
                    "project_id": project.id,
                    "project_title": project.title,
                    "proposal_id": proposal.id,
                },
                statement=_SUBMITTED,
                parameters=inserted_proposal_parameters(proposal),
            )
        except IntegrityError as exc:
            if constraint_name(exc) != _ONE_ACTIVE:
                raise
            raise Conflict("You already have an active proposal on this project.") from exc
        count_after_commit(self.session, "proposal_submitted")
        return proposal

    async def list_for_project(
        self, *, project_id: uuid.UUID, principal: Principal, cursor: str | None, limit: int
    ) -> Page[ProposalResponse]:
        """The owner (and admins) see every proposal; anyone else only their own."""
        project = await self.projects.visible(project_id, principal)
        sees_all = principal.is_admin or project.client_id == principal.account_id
        after = None
        if cursor is not None:
            created, proposal_id = decode_cursor(
                cursor, _CURSOR_KIND, dt.datetime.fromisoformat, uuid.UUID
            )
            after = (created, proposal_id)
        rows = await self.repository.page(
            project.id,
            expert_id=None if sees_all else principal.account_id,
            after=after,
            limit=limit + 1,
        )
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(_CURSOR_KIND, last.created_at.isoformat(), last.id)
        return Page[ProposalResponse](
            data=[ProposalResponse.model_validate(row) for row in rows[:limit]],
            next_cursor=next_cursor,
        )

    async def accept(self, *, proposal_id: uuid.UUID, principal: Principal) -> Proposal:
        project, proposal = await self._locked(proposal_id, principal)
        if project.client_id != principal.account_id and not principal.is_admin:
            raise NotFound("No such proposal.")
        if project.status != ProjectStatus.open:
            raise Conflict(f"The project is {project.status}; no proposal can be accepted.")
        if proposal.status != ProposalStatus.pending:
            raise Conflict(f"The proposal is {proposal.status}, not pending.")
        now = utcnow()
        proposal.status = ProposalStatus.accepted
        proposal.decided_at = now
        proposal.updated_at = now
        project.status = ProjectStatus.in_progress
        project.expert_id = proposal.expert_id
        project.updated_at = now
        await self.session.flush()
        declined = await self.repository.decline_others(project.id, proposal.id, now)
        notifications = NotificationService(self.session)
        await notifications.notify(
            recipients=[proposal.expert_id],
            kind=NotificationKind.proposal_accepted,
            payload={
                "project_id": project.id,
                "project_title": project.title,
                "proposal_id": proposal.id,
            },
        )
        for other_id, expert_id in declined:
            await notifications.notify(
                recipients=[expert_id],
                kind=NotificationKind.proposal_declined,
                payload={
                    "project_id": project.id,
                    "project_title": project.title,
                    "proposal_id": other_id,
                    "reason": "another_accepted",
                },
            )
        count_after_commit(self.session, "proposal_accepted")
        open_projects_changed(self.session)  # the project left the open list
        return proposal

    async def withdraw(self, *, proposal_id: uuid.UUID, principal: Principal) -> Proposal:
        _, proposal = await self._locked(proposal_id, principal)
        if proposal.expert_id != principal.account_id:
            raise NotFound("No such proposal.")
        if proposal.status != ProposalStatus.pending:
            raise Conflict(
                f"The proposal is {proposal.status}; only a pending one can be withdrawn."
            )
        proposal.status = ProposalStatus.withdrawn
        proposal.updated_at = utcnow()
        await self.session.flush()
        return proposal

    async def _locked(
        self, proposal_id: uuid.UUID, principal: Principal
    ) -> tuple[Project, Proposal]:
        """Lock the proposal's project, then re-read the proposal under that lock: whoever
        waited behind a concurrent accept sees the outcome, not the state before it."""
        found = await self.repository.get(proposal_id)
        if found is None:
            raise NotFound("No such proposal.")
        if found.expert_id != principal.account_id and not principal.is_admin:
            project = await self.projects.repository.get(found.project_id)
            if project is None or project.client_id != principal.account_id:
                raise NotFound("No such proposal.")
        project = await self.projects.visible(found.project_id, principal, lock=True)
        proposal = await self.repository.get(proposal_id)
        assert proposal is not None  # proposals are never deleted while their project exists
        return project, proposal
